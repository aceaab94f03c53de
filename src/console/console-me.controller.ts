import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Roles } from '../auth/principal.js';
import { ConsoleReadsService } from './console-reads.service.js';
import {
  ActivePromotionListDto,
  SelectableGroupListDto,
  TopUpPriceDto,
  TopUpPriceQueryDto,
} from './dto/console.dto.js';

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me')
export class ConsoleMeController {
  constructor(@Inject(ConsoleReadsService) private readonly reads: ConsoleReadsService) {}

  @Get('groups')
  @ApiOkResponse({
    type: SelectableGroupListDto,
    description: 'The groups this customer may put its tokens in (selectable ones), by name',
  })
  groups(): Promise<SelectableGroupListDto> {
    return this.reads.selectableGroups();
  }

  @Get('promotions')
  @ApiOkResponse({
    type: ActivePromotionListDto,
    description: 'Top-up promotions running now, lowest rate first',
  })
  promotions(): Promise<ActivePromotionListDto> {
    return this.reads.activePromotions();
  }

  @Get('top-up-price')
  @ApiOkResponse({
    type: TopUpPriceDto,
    description:
      'The price a top-up of credit would cost now (best promotion for that credit, half-up to cents), ' +
      'as POST /v1/me/top-ups would compute it',
  })
  topUpPrice(@Query() q: TopUpPriceQueryDto): Promise<TopUpPriceDto> {
    return this.reads.topUpPrice(q.credit);
  }
}
