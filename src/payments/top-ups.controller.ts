import { Body, Controller, Get, Inject, Param, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentAccountId, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { CreateTopUpDto, TopUpDto, TopUpPageDto } from './dto/top-up.dto.js';
import { TopUpsService, toTopUpDto } from './top-ups.service.js';

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me/top-ups')
export class MyTopUpsController {
  constructor(@Inject(TopUpsService) private readonly topUps: TopUpsService) {}

  @Post()
  @ApiCreatedResponse({
    type: TopUpDto,
    description:
      'A pending top-up and its Stripe Checkout page (checkoutUrl). price = credit × the lowest rate among ' +
      'promotions that apply now to this credit, rounded half-up to cents; the credit is booked when Stripe ' +
      'reports the payment. Checkout returns to PUBLIC_BASE_URL/top-ups/{id}?checkout=success|cancelled.',
  })
  @ApiServiceUnavailableResponse({
    description:
      'payments_not_configured: no STRIPE_SECRET_KEY (nothing is stored); service_unavailable: Stripe refused ' +
      'or could not be reached (the top-up is stored as failed, nothing is charged)',
  })
  async create(
    @CurrentAccountId() accountId: string,
    @Body() dto: CreateTopUpDto,
  ): Promise<TopUpDto> {
    return toTopUpDto(await this.topUps.create(accountId, dto));
  }

  @Get()
  @ApiOkResponse({ type: TopUpPageDto, description: 'Newest first' })
  list(@CurrentAccountId() accountId: string, @Query() q: ListQueryDto): Promise<Page<TopUpDto>> {
    return this.topUps.list(accountId, q.limit, q.cursor);
  }

  @Get(':id')
  @ApiOkResponse({ type: TopUpDto })
  async get(@CurrentAccountId() accountId: string, @Param('id') id: string): Promise<TopUpDto> {
    return toTopUpDto(await this.topUps.getOwned(accountId, id));
  }
}

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/accounts/:accountId/top-ups')
export class AdminTopUpsController {
  constructor(@Inject(TopUpsService) private readonly topUps: TopUpsService) {}

  @Get()
  @ApiOkResponse({ type: TopUpPageDto, description: "The account's top-ups, newest first" })
  list(@Param('accountId') accountId: string, @Query() q: ListQueryDto): Promise<Page<TopUpDto>> {
    return this.topUps.listForAccount(accountId, q.limit, q.cursor);
  }
}
