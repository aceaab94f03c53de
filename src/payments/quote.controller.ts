import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AnyRole, CurrentPrincipal } from '../auth/principal.js';
import type { Principal } from '../auth/principal.js';
import { QuoteDto, QuoteQueryDto } from './dto/quote.dto.js';
import { QuoteService } from './quote.service.js';

@ApiTags('models')
@ApiBearerAuth()
@Controller('v1/pricing')
export class QuoteController {
  constructor(@Inject(QuoteService) private readonly quotes: QuoteService) {}

  @Get('quote')
  @AnyRole()
  @ApiOkResponse({
    type: QuoteDto,
    description:
      'listPrice = reference price for (size, quality) of a tokens-mode model, or its flat perRequest/perImage, × n; ' +
      'price = listPrice × the group ratio; cashPrice = price × the lowest rate among promotions active now ' +
      '(minCredit ignored: usage bought with the best top-up available), or price when none. All exact, never ' +
      'rounded, written without padding ("0.17935", "150", "127.5"). 400 names each unknown or missing field: ' +
      'model (unpriced), group (unknown, or not selectable for a customer), size/quality (no reference price).',
  })
  quote(@Query() q: QuoteQueryDto, @CurrentPrincipal() principal: Principal): Promise<QuoteDto> {
    return this.quotes.quote(q, principal);
  }
}
