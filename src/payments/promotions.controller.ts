import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentActor, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import {
  CreatePromotionDto,
  PromotionDto,
  PromotionPageDto,
  UpdatePromotionDto,
} from './dto/promotion.dto.js';
import { PromotionsService } from './promotions.service.js';

@ApiTags('admin: promotions')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/promotions')
export class PromotionsController {
  constructor(@Inject(PromotionsService) private readonly promotions: PromotionsService) {}

  @Get()
  @ApiOkResponse({
    type: PromotionPageDto,
    description: 'Every promotion, active or not, newest first',
  })
  list(@Query() q: ListQueryDto): Promise<Page<PromotionDto>> {
    return this.promotions.list(q.limit, q.cursor);
  }

  @Post()
  @ApiCreatedResponse({
    type: PromotionDto,
    description:
      'A promotion applies to a top-up when it is active, started (startsAt null or past), not ended ' +
      '(endsAt null or future) and the credit is at least minCredit. When several apply, the lowest rate wins.',
  })
  create(@Body() dto: CreatePromotionDto, @CurrentActor() actor: string): Promise<PromotionDto> {
    return this.promotions.create(dto, actor);
  }

  @Get(':id')
  @ApiOkResponse({ type: PromotionDto })
  get(@Param('id') id: string): Promise<PromotionDto> {
    return this.promotions.get(id);
  }

  @Patch(':id')
  @ApiOkResponse({
    type: PromotionDto,
    description: 'Applies to top-ups created after it; existing top-ups keep their price',
  })
  update(
    @Param('id') id: string,
    @Body() dto: UpdatePromotionDto,
    @CurrentActor() actor: string,
  ): Promise<PromotionDto> {
    return this.promotions.update(id, dto, actor);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse({
    description:
      'Deletes the promotion for good. Top-ups priced with it keep their own snapshot { id, name, rate }, ' +
      'so no past top-up changes. To pause a promotion instead, PATCH { active: false }.',
  })
  delete(@Param('id') id: string, @CurrentActor() actor: string): Promise<void> {
    return this.promotions.delete(id, actor);
  }
}
