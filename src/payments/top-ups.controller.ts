import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentAccountId, CurrentActor, Roles } from '../auth/principal.js';
import { invalid } from '../common/errors/domain-error.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import {
  AdminTopUpsQueryDto,
  CreateTopUpDto,
  ResolveTopUpDto,
  TopUpDto,
  TopUpPageDto,
} from './dto/top-up.dto.js';
import { MALFORMED_KEY, OptionalIdempotencyKey } from './optional-idempotency-key.js';
import { TopUpReviewsService } from './top-up-reviews.service.js';
import { MAX_PENDING_TOP_UPS, TopUpsService } from './top-ups.service.js';

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me/top-ups')
export class MyTopUpsController {
  constructor(@Inject(TopUpsService) private readonly topUps: TopUpsService) {}

  @Post()
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Optional, 1 to 255 printable characters: a retry with the same key and body answers the same top-up ' +
      '(200) and starts no second Checkout; another body under the key is 409 idempotency_conflict',
  })
  @ApiCreatedResponse({
    type: TopUpDto,
    description:
      'A pending top-up and its Stripe Checkout page (checkoutUrl). price = credit × the lowest rate among ' +
      'promotions that apply now to this credit, rounded half-up to cents; the credit is booked when Stripe ' +
      'reports the payment. Checkout returns to PUBLIC_BASE_URL/top-ups/{id}?checkout=success|cancelled. ' +
      '200 (not 201) when replayed with the same Idempotency-Key and body.',
  })
  @ApiConflictResponse({
    description:
      `too_many_pending: the account already has ${MAX_PENDING_TOP_UPS} pending top-ups created in the last 24 h ` +
      '(nothing is stored); idempotency_conflict: the Idempotency-Key was used with another body',
  })
  @ApiServiceUnavailableResponse({
    description:
      'payments_not_configured: no STRIPE_SECRET_KEY (nothing is stored); service_unavailable: Stripe refused ' +
      'or could not be reached (the top-up is stored as failed, nothing is charged)',
  })
  async create(
    @CurrentAccountId() accountId: string,
    @OptionalIdempotencyKey() idempotencyKey: string | typeof MALFORMED_KEY | undefined,
    @Body() dto: CreateTopUpDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<TopUpDto> {
    if (idempotencyKey === MALFORMED_KEY) {
      throw invalid(
        'Idempotency-Key',
        'Idempotency-Key header must be 1 to 255 printable characters',
      );
    }
    const { topUp, replayed } = await this.topUps.create(accountId, idempotencyKey ?? null, dto);
    res.status(replayed ? 200 : 201);
    return topUp;
  }

  @Get()
  @ApiOkResponse({ type: TopUpPageDto, description: 'Newest first' })
  list(@CurrentAccountId() accountId: string, @Query() q: ListQueryDto): Promise<Page<TopUpDto>> {
    return this.topUps.list(accountId, q.limit, q.cursor);
  }

  @Get(':id')
  @ApiOkResponse({ type: TopUpDto })
  get(@CurrentAccountId() accountId: string, @Param('id') id: string): Promise<TopUpDto> {
    return this.topUps.getOwned(accountId, id);
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

@ApiTags('admin: top-ups')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/top-ups')
export class AdminTopUpReviewsController {
  constructor(@Inject(TopUpReviewsService) private readonly reviews: TopUpReviewsService) {}

  @Get()
  @ApiOkResponse({
    type: TopUpPageDto,
    description:
      "Every account's top-ups, newest first; ?status=needs_review is the review queue (reviewReason says why)",
  })
  list(@Query() q: AdminTopUpsQueryDto): Promise<Page<TopUpDto>> {
    return this.reviews.list(q.status, q.limit, q.cursor);
  }

  @Post(':id/resolve')
  @HttpCode(200)
  @ApiOkResponse({
    type: TopUpDto,
    description:
      'Final decision on a needs_review top-up. credit: books its credit once (status paid), then any refunds and ' +
      'disputes Stripe reported take their part; dismiss: closes it without credit (status failed, or paid when ' +
      'its credit had been booked before the review, e.g. refunds above the amount paid). Recorded in the ' +
      'audit log (top_up.credit or top_up.dismiss) with the admin key that decided.',
  })
  @ApiConflictResponse({
    description:
      'conflict: the top-up is not in needs_review, was already resolved (a resolution is final), or credit was ' +
      'asked for a top-up whose credit was already booked',
  })
  resolve(
    @Param('id') id: string,
    @Body() dto: ResolveTopUpDto,
    @CurrentActor() actor: string,
  ): Promise<TopUpDto> {
    return this.reviews.resolve(id, dto, actor);
  }
}
