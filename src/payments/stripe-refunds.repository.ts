import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';

export interface StripeRefund {
  id: string;
  topUpId: string | null;
  amount: Decimal;
  status: string;
  failed: boolean;
}

interface StripeRefundRow {
  id: string;
  top_up_id: string | null;
  amount: string;
  status: string;
  failed: boolean;
}

const toRefund = (r: StripeRefundRow): StripeRefund => ({
  id: r.id,
  topUpId: r.top_up_id,
  amount: money(r.amount),
  status: r.status,
  failed: r.failed,
});

/** SQL of `stripe_refunds`: each Stripe refund's amount and whether it failed. */
@Injectable()
export class StripeRefundsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * The refund's row, created on first sight and locked until the caller's transaction ends:
   * concurrent events about one refund apply one after the other. Its amount is the one
   * first reported; `failed` is what was recorded before this event.
   */
  async lockOrCreate(
    r: {
      id: string;
      topUpId: string | null;
      paymentIntentId: string | null;
      chargeId: string | null;
      amount: Decimal;
      status: string;
    },
    em: EntityManager,
  ): Promise<StripeRefund> {
    await em.query(
      `INSERT INTO stripe_refunds (id, top_up_id, payment_intent_id, charge_id, amount, status)
       VALUES ($1, $2, $3, $4, $5::numeric, $6) ON CONFLICT (id) DO NOTHING`,
      [r.id, r.topUpId, r.paymentIntentId, r.chargeId, r.amount.toFixed(), r.status],
    );
    const rows = await sqlRows<StripeRefundRow>(
      em,
      `SELECT id, top_up_id, amount, status, failed FROM stripe_refunds WHERE id = $1 FOR UPDATE`,
      [r.id],
    );
    return toRefund(rows[0]);
  }

  /** Stores the latest status; a failure is final (a failed refund never succeeds later). */
  async update(
    id: string,
    r: { status: string; failed: boolean; topUpId: string | null },
    em: EntityManager,
  ): Promise<void> {
    await em.query(
      `UPDATE stripe_refunds SET status = $2, failed = failed OR $3, top_up_id = COALESCE(top_up_id, $4),
         updated_at = now()
       WHERE id = $1`,
      [id, r.status, r.failed, r.topUpId],
    );
  }

  /** Attaches refunds recorded before their payment was known (same PaymentIntent). */
  async attach(topUpId: string, paymentIntentId: string, em: EntityManager): Promise<void> {
    await em.query(
      `UPDATE stripe_refunds SET top_up_id = $1, updated_at = now()
       WHERE payment_intent_id = $2 AND top_up_id IS NULL`,
      [topUpId, paymentIntentId],
    );
  }

  /** Cash of the top-up's refunds that failed or were canceled. */
  async failedCash(topUpId: string, em: EntityManager = this.ds.manager): Promise<Decimal> {
    const rows = await sqlRows<{ total: string }>(
      em,
      `SELECT COALESCE(sum(amount), 0) AS total FROM stripe_refunds WHERE top_up_id = $1 AND failed`,
      [topUpId],
    );
    return money(rows[0]?.total ?? '0');
  }
}
