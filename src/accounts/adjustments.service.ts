import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { DomainError, invalid, notFound } from '../common/errors/domain-error.js';
import { IDEMPOTENCY_KEY_PATTERN } from '../common/http/idempotency-key.js';
import { money } from '../common/money/money.js';
import { AuditService } from '../audit/audit.service.js';
import { LedgerService } from '../ledger/ledger.service.js';
import { AccountsRepository } from './accounts.repository.js';
import { toAdjustmentDto } from './accounts.mapper.js';
import { Adjustment, AdjustmentsRepository } from './adjustments.repository.js';
import { AdjustmentDto, CreateAdjustmentDto } from './dto/account.dto.js';

@Injectable()
export class AdjustmentsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(AdjustmentsRepository) private readonly repo: AdjustmentsRepository,
    @Inject(LedgerService) private readonly ledger: LedgerService,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  /**
   * Books a signed credit or debit once per idempotency key. A replay with the same body
   * returns the stored adjustment (`replayed: true`); a different body under the key is 409.
   * With `outer`, it runs in the caller's transaction (console sign-up's trial credit).
   */
  async create(
    accountId: string,
    idempotencyKey: string | undefined,
    dto: CreateAdjustmentDto,
    outer?: EntityManager,
    /** The admin who books it, for the audit log (none for the console's trial credit). */
    actor?: string,
  ): Promise<{ adjustment: AdjustmentDto; replayed: boolean }> {
    if (idempotencyKey === undefined || !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw invalid('Idempotency-Key', 'header is required: 1 to 255 printable characters');
    }
    const amount = money(dto.amount);
    if (amount.isZero()) throw invalid('amount', 'must not be zero');
    if (!(await this.accounts.findById(accountId, outer))) throw notFound('account');

    // Same amount written "5.0" or "5.00" is the same request.
    const requestHash = createHash('sha256')
      .update(JSON.stringify([amount.toFixed(), dto.reason]))
      .digest('hex');

    const book = async (
      em: EntityManager,
    ): Promise<{ adjustment: Adjustment; replayed: boolean }> => {
      const claimed = await this.repo.claim(
        { accountId, idempotencyKey, requestHash, amount, reason: dto.reason },
        em,
      );
      if (!claimed) {
        const stored = await this.repo.findByKey(accountId, idempotencyKey, em);
        if (!stored) throw new Error('idempotency key vanished');
        if (stored.requestHash !== requestHash) {
          throw new DomainError(
            'idempotency_conflict',
            'Idempotency-Key was already used with a different body',
          );
        }
        return { adjustment: stored, replayed: true };
      }
      const entry = await this.ledger.book(
        {
          accountId,
          type: 'adjustment',
          amount,
          description: `Adjustment: ${dto.reason}`,
          reference: claimed.id,
        },
        em,
      );
      await this.repo.recordBooking(claimed.id, entry.id, entry.balanceAfter, em);
      const adjustment = { ...claimed, ledgerEntryId: entry.id, balanceAfter: entry.balanceAfter };
      if (actor !== undefined) {
        await this.audit.record(
          {
            actor,
            action: 'account.adjust',
            target: `account:${accountId}`,
            before: null,
            after: { adjustmentId: claimed.id, amount: amount.toFixed(), reason: dto.reason },
          },
          em,
        );
      }
      return { adjustment, replayed: false };
    };
    const { adjustment, replayed } = await (outer ? book(outer) : this.ds.transaction(book));
    return { adjustment: toAdjustmentDto(adjustment), replayed };
  }
}
