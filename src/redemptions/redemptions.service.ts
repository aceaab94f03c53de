import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { AuditService } from '../audit/audit.service.js';
import { DomainError, notFound } from '../common/errors/domain-error.js';
import { formatAmount, money } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { LedgerService } from '../ledger/ledger.service.js';
import {
  CreatedRedemptionBatchDto,
  CreateRedemptionBatchDto,
  RedemptionBatchDto,
  RedemptionDto,
} from './dto/redemption.dto.js';
import { codeHash, generateCode, normalizeCode } from './redemption-codes.js';
import {
  toCreatedRedemptionBatchDto,
  toRedemptionBatchDto,
  toRedemptionDto,
} from './redemptions.mapper.js';
import { MAX_FAILED_ATTEMPTS, RedemptionsRepository } from './redemptions.repository.js';

/** 429 after too many failed attempts; the controller turns retryAfterSeconds into Retry-After. */
export class TooManyAttemptsError extends DomainError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      'too_many_attempts',
      `more than ${MAX_FAILED_ATTEMPTS} failed redemption attempts in a minute: retry in ${retryAfterSeconds} s`,
    );
  }
}

/** One answer for every code that does not credit, so codes cannot be probed. */
const invalidCode = (): DomainError =>
  new DomainError('invalid_code', 'this code cannot be redeemed');

type Attempt =
  | { kind: 'redeemed'; credit: Decimal; balance: Decimal }
  | { kind: 'invalid' }
  | { kind: 'throttled'; retryAfter: number };

/** Prepaid redemption codes: admins make batches, customers redeem a code once for credit. */
@Injectable()
export class RedemptionsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(RedemptionsRepository) private readonly repo: RedemptionsRepository,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(LedgerService) private readonly ledger: LedgerService,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  /**
   * Makes `count` codes; they are returned here only, the database keeps their hashes (the
   * audit entry records the batch, never a code).
   */
  async createBatch(
    dto: CreateRedemptionBatchDto,
    actor: string,
  ): Promise<CreatedRedemptionBatchDto> {
    const codes = Array.from({ length: dto.count }, generateCode);
    const batch = await this.ds.transaction(async (em) => {
      const created = await this.repo.insertBatch(
        {
          name: dto.name,
          credit: money(dto.credit),
          expiresAt: dto.expiresAt ?? null,
          codeHashes: codes.map((c) => codeHash(normalizeCode(c) ?? c)),
        },
        em,
      );
      await this.audit.record(
        {
          actor,
          action: 'redemption_batch.create',
          target: `redemption_batch:${created.id}`,
          before: null,
          after: toRedemptionBatchDto(created),
        },
        em,
      );
      return created;
    });
    return toCreatedRedemptionBatchDto(batch, codes);
  }

  async listBatches(limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<RedemptionBatchDto>> {
    const rows = await this.repo.listBatches(limit, decodeCursor(cursor, ['timestamp', 'uuid']));
    return toPage(rows, limit, (b) => [b.cursorAt, b.id], toRedemptionBatchDto);
  }

  /** Disables the batch's codes not yet redeemed; redeemed ones stay. Repeating it is harmless. */
  async disableBatch(batchId: string, actor: string): Promise<RedemptionBatchDto> {
    return this.ds.transaction(async (em) => {
      const before = await this.repo.findBatch(batchId, em);
      if (!before || !(await this.repo.disableBatch(batchId, em))) {
        throw notFound('redemption batch');
      }
      const batch = await this.repo.findBatch(batchId, em);
      if (!batch) throw notFound('redemption batch');
      await this.audit.record(
        {
          actor,
          action: 'redemption_batch.disable',
          target: `redemption_batch:${batchId}`,
          before: toRedemptionBatchDto(before),
          after: toRedemptionBatchDto(batch),
        },
        em,
      );
      return toRedemptionBatchDto(batch);
    });
  }

  /**
   * Redeems a code for the account: its credit booked once, as a `redemption` ledger entry,
   * in the transaction that marks the code redeemed. Every code that does not credit answers
   * the same 400 invalid_code and counts as a failed attempt (stored in PostgreSQL, so every
   * instance counts them); the attempt check, the claim and the record of a failure run under
   * the account's lock, so concurrent attempts cannot slip past the limit.
   */
  async redeem(accountId: string, code: string): Promise<RedemptionDto> {
    await this.accounts.assertActive(accountId);
    const canonical = normalizeCode(code);
    const attempt = await this.ds.transaction(async (em): Promise<Attempt> => {
      await this.repo.lockAttempts(accountId, em);
      const wait = await this.repo.throttledFor(accountId, em);
      if (wait !== null) return { kind: 'throttled', retryAfter: wait };
      const claimed =
        canonical === null ? null : await this.repo.claim(codeHash(canonical), accountId, em);
      if (claimed === null) {
        // Committed with the transaction: the failure counts even though the answer is an error.
        await this.repo.recordFailure(accountId, em);
        return { kind: 'invalid' };
      }
      const entry = await this.ledger.book(
        {
          accountId,
          type: 'redemption',
          amount: claimed.credit,
          reference: claimed.codeId,
          description: `Redemption code (${claimed.batchName}): ${formatAmount(claimed.credit)} USD credit`,
        },
        em,
      );
      return { kind: 'redeemed', credit: claimed.credit, balance: entry.balanceAfter };
    });
    switch (attempt.kind) {
      case 'redeemed':
        return toRedemptionDto(attempt);
      case 'invalid':
        throw invalidCode();
      case 'throttled':
        throw new TooManyAttemptsError(attempt.retryAfter);
    }
  }
}
