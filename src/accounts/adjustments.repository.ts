import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';

export interface Adjustment {
  id: string;
  accountId: string;
  idempotencyKey: string;
  requestHash: string;
  amount: Decimal;
  reason: string;
  ledgerEntryId: string | null;
  balanceAfter: Decimal | null;
  createdAt: Date;
}

interface AdjustmentRow {
  id: string;
  account_id: string;
  idempotency_key: string;
  request_hash: string;
  amount: string;
  reason: string;
  ledger_entry_id: string | null;
  balance_after: string | null;
  created_at: Date;
}

const COLUMNS = `id, account_id, idempotency_key, request_hash, amount, reason, ledger_entry_id, balance_after, created_at`;

const toAdjustment = (r: AdjustmentRow): Adjustment => ({
  id: r.id,
  accountId: r.account_id,
  idempotencyKey: r.idempotency_key,
  requestHash: r.request_hash,
  amount: money(r.amount),
  reason: r.reason,
  ledgerEntryId: r.ledger_entry_id,
  balanceAfter: r.balance_after === null ? null : money(r.balance_after),
  createdAt: r.created_at,
});

@Injectable()
export class AdjustmentsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Claims the idempotency key. A concurrent request with the same key waits on the unique
   * index until this transaction ends, then gets null and reads the stored outcome.
   */
  async claim(
    a: {
      accountId: string;
      idempotencyKey: string;
      requestHash: string;
      amount: Decimal;
      reason: string;
    },
    em: EntityManager,
  ): Promise<Adjustment | null> {
    const rows = await sqlRows<AdjustmentRow>(
      em,
      `INSERT INTO adjustments (account_id, idempotency_key, request_hash, amount, reason)
       VALUES ($1, $2, $3, $4::numeric, $5)
       ON CONFLICT (account_id, idempotency_key) DO NOTHING RETURNING ${COLUMNS}`,
      [a.accountId, a.idempotencyKey, a.requestHash, a.amount.toFixed(), a.reason],
    );
    return rows[0] ? toAdjustment(rows[0]) : null;
  }

  async recordBooking(
    id: string,
    ledgerEntryId: string,
    balanceAfter: Decimal,
    em: EntityManager,
  ): Promise<void> {
    await em.query(
      `UPDATE adjustments SET ledger_entry_id = $2, balance_after = $3::numeric WHERE id = $1`,
      [id, ledgerEntryId, balanceAfter.toFixed()],
    );
  }

  async findByKey(
    accountId: string,
    idempotencyKey: string,
    em: EntityManager,
  ): Promise<Adjustment | null> {
    const rows = await sqlRows<AdjustmentRow>(
      em,
      `SELECT ${COLUMNS} FROM adjustments WHERE account_id = $1 AND idempotency_key = $2`,
      [accountId, idempotencyKey],
    );
    return rows[0] ? toAdjustment(rows[0]) : null;
  }
}
