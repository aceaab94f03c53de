import { Body, Controller, Delete, Get, Inject, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentAccountId, CurrentActor, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import {
  CreatedRedemptionBatchDto,
  CreateRedemptionBatchDto,
  RedeemCodeDto,
  RedemptionBatchDto,
  RedemptionBatchPageDto,
  RedemptionDto,
} from './dto/redemption.dto.js';
import { MAX_FAILED_ATTEMPTS } from './redemptions.repository.js';
import { RedemptionsService, TooManyAttemptsError } from './redemptions.service.js';

@ApiTags('admin: redemption codes')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/redemption-codes')
export class AdminRedemptionCodesController {
  constructor(@Inject(RedemptionsService) private readonly redemptions: RedemptionsService) {}

  @Post()
  @ApiCreatedResponse({
    type: CreatedRedemptionBatchDto,
    description:
      'A batch of codes, each crediting `credit` once; the codes are shown only here. Recorded in the audit ' +
      'log (redemption_batch.create), without the codes.',
  })
  create(
    @Body() dto: CreateRedemptionBatchDto,
    @CurrentActor() actor: string,
  ): Promise<CreatedRedemptionBatchDto> {
    return this.redemptions.createBatch(dto, actor);
  }

  @Get()
  @ApiOkResponse({ type: RedemptionBatchPageDto, description: 'Batches with redeemed counts' })
  list(@Query() q: ListQueryDto): Promise<Page<RedemptionBatchDto>> {
    return this.redemptions.listBatches(q.limit, q.cursor);
  }

  @Delete(':batchId')
  @ApiOkResponse({
    type: RedemptionBatchDto,
    description:
      'Disables the batch: its codes not yet redeemed no longer redeem (redeemed ones stay booked). Repeatable.',
  })
  disable(
    @Param('batchId') batchId: string,
    @CurrentActor() actor: string,
  ): Promise<RedemptionBatchDto> {
    return this.redemptions.disableBatch(batchId, actor);
  }
}

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me/redemptions')
export class MyRedemptionsController {
  constructor(@Inject(RedemptionsService) private readonly redemptions: RedemptionsService) {}

  @Post()
  @ApiCreatedResponse({
    type: RedemptionDto,
    description:
      'Redeems a code: its credit is booked to the balance (ledger type redemption). A code credits once, ever, ' +
      'whoever sends it and however many times at once.',
  })
  @ApiBadRequestResponse({
    description:
      'invalid_code: the code is unknown, used, expired or disabled (one answer for all); validation_failed: no code',
  })
  @ApiForbiddenResponse({ description: 'account_suspended' })
  @ApiTooManyRequestsResponse({
    description: `too_many_attempts: ${MAX_FAILED_ATTEMPTS} failed attempts in the last minute (Retry-After says when to retry)`,
  })
  async redeem(
    @CurrentAccountId() accountId: string,
    @Body() dto: RedeemCodeDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<RedemptionDto> {
    try {
      // Awaited here, so a refusal reaches the catch below and sets Retry-After.
      return await this.redemptions.redeem(accountId, dto.code);
    } catch (err) {
      if (err instanceof TooManyAttemptsError)
        res.header('Retry-After', String(err.retryAfterSeconds));
      throw err;
    }
  }
}
