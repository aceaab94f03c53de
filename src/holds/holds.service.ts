import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Decimal } from 'decimal.js';
import { DataSource } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { notFound } from '../common/errors/domain-error.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import type { AppConfig } from '../config/app.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { HoldDto, ReleaseResultDto } from './dto/hold.dto.js';
import { toHoldDto, toReleaseResultDto } from './holds.mapper.js';
import { Hold, HoldsRepository, PlaceResult } from './holds.repository.js';

/** Spend control: holds placed by authorize, released by the gateway, expired by time. */
@Injectable()
export class HoldsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(HoldsRepository) private readonly repo: HoldsRepository,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(ConfigService) private readonly config: ConfigService<AppConfig, true>,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    metrics.gaugeActiveHolds(() => this.repo.countActive());
  }

  /** Locks the account, then checks and reserves in one statement (see HoldsRepository.place). */
  async place(h: {
    requestId: string;
    accountId: string;
    tokenId: string;
    model: string;
    amount: Decimal;
  }): Promise<PlaceResult> {
    const placed = await this.repo.place({ ...h, ttlSeconds: this.ttlSeconds() });
    if (!placed) throw notFound('account');
    return placed;
  }

  /** How long a hold lasts unless settled or released (HOLD_TTL_SECONDS). */
  ttlSeconds(): number {
    return this.config.get('spend', { infer: true }).holdTtlSeconds;
  }

  find(requestId: string): Promise<Hold | null> {
    return this.repo.find(requestId);
  }

  /** Idempotent: a hold already closed answers how it was closed. */
  async release(requestId: string): Promise<ReleaseResultDto> {
    const hold = await this.ds.transaction(async (em) => {
      const accountId = await this.repo.lockAccountOfHold(requestId, em);
      return accountId ? this.repo.release(requestId, em) : null;
    });
    if (!hold) throw notFound(`hold ${requestId}`);
    return toReleaseResultDto(requestId, hold);
  }

  async listActive(
    accountId: string,
    limit = DEFAULT_LIMIT,
    cursor?: string,
  ): Promise<Page<HoldDto>> {
    await this.accounts.get(accountId);
    const rows = await this.repo.listActive(
      accountId,
      limit,
      decodeCursor(cursor, ['timestamp', 'text']),
    );
    return toPage(rows, limit, (h) => [h.cursorAt, h.requestId], toHoldDto);
  }

  sweepExpired(maxAccounts = 100): Promise<number> {
    return this.repo.sweepExpired(maxAccounts);
  }
}
