import { Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { UsageReviewDto, UsageReviewPageDto } from './dto/usage-review.dto.js';
import { UsageReviewsService } from './usage-reviews.service.js';

@ApiTags('admin: usage reviews')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/usage-reviews')
export class UsageReviewsController {
  constructor(@Inject(UsageReviewsService) private readonly reviews: UsageReviewsService) {}

  @Get()
  @ApiOkResponse({
    type: UsageReviewPageDto,
    description: 'Events awaiting review, all accounts, newest first',
  })
  list(@Query() q: ListQueryDto): Promise<Page<UsageReviewDto>> {
    return this.reviews.listPending(q.limit, q.cursor);
  }

  @Post(':requestId/approve')
  @HttpCode(200)
  @ApiOkResponse({
    type: UsageReviewDto,
    description: 'Books the charge once, dated now; 409 when already approved or voided',
  })
  approve(
    @Param('requestId') requestId: string,
    @CurrentActor() actor: string,
  ): Promise<UsageReviewDto> {
    return this.reviews.approve(requestId, actor);
  }

  @Post(':requestId/void')
  @HttpCode(200)
  @ApiOkResponse({ type: UsageReviewDto, description: 'Never charged; 409 when already decided' })
  void(
    @Param('requestId') requestId: string,
    @CurrentActor() actor: string,
  ): Promise<UsageReviewDto> {
    return this.reviews.void(requestId, actor);
  }
}
