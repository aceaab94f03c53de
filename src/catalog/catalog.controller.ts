import { Body, Controller, Get, Inject, Param, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AnyRole, CurrentActor, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { CatalogService } from './catalog.service.js';
import { PriceVersionDto, PriceVersionPageDto, PutPriceDto } from './dto/price.dto.js';

@ApiTags('models')
@ApiBearerAuth()
@Controller('v1')
export class CatalogController {
  constructor(@Inject(CatalogService) private readonly catalog: CatalogService) {}

  @Get('models')
  @AnyRole()
  @ApiOkResponse({
    type: PriceVersionPageDto,
    description: 'The price in force now for every priced model, in model name order',
  })
  list(@Query() q: ListQueryDto): Promise<Page<PriceVersionDto>> {
    return this.catalog.listCurrent(q.limit, q.cursor);
  }

  @Put('admin/models/:model')
  @Roles('admin')
  @ApiOkResponse({ type: PriceVersionDto, description: 'The new price version' })
  put(
    @Param('model') model: string,
    @Body() dto: PutPriceDto,
    @CurrentActor() actor: string,
  ): Promise<PriceVersionDto> {
    return this.catalog.putPrice(model, dto, actor);
  }

  @Get('admin/models/:model/versions')
  @Roles('admin')
  @ApiOkResponse({ type: PriceVersionPageDto, description: 'Every version, newest first' })
  versions(
    @Param('model') model: string,
    @Query() q: ListQueryDto,
  ): Promise<Page<PriceVersionDto>> {
    return this.catalog.listVersions(model, q.limit, q.cursor);
  }
}
