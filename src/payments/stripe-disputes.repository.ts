import { Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';

export interface StripeDispute {
  id: string;
  topUpId: string | null;
  /** Disputed cash in USD; null when Stripe sent no usable USD amount. */
  amount: Decimal | null;
  status: string | null;
  /** Its debit was booked (debitedCredit is what it took, possibly 0 when nothing was left). */
  debited: boolean;
  debitedCredit: Decimal;
  /** Won or its funds reinstated: never debited after, booked back once if it was. */
  reinstated: boolean;
}

interface StripeDisputeRow {
  id: string;
  top_up_id: string | null;
  amount: string | null;
  status: string | null;
  debited: boolean;
  debited_credit: string;
  reinstated: boolean;
}

const toDispute = (r: StripeDisputeRow): StripeDispute => ({
  id: r.id,
  topUpId: r.top_up_id,
  amount: r.amount === null ? null : money(r.amount),
  status: r.status,
  debited: r.debited,
  debitedCredit: money(r.debited_credit),
  reinstated: r.reinstated,
});

const COLUMNS = `id, top_up_id, amount, status, debited, debited_credit, reinstated`;

/** SQL of `stripe_disputes`: each dispute's debit and reversal, so both happen once. */
@Injectable()
export class StripeDisputesRepository {
  /**
   * The dispute's row, created on first sight and locked until the caller's transaction ends,
   * with what earlier events recorded. A usable amount fills one that was missing; the status
   * is the latest reported.
   */
  async lockOrCreate(
    d: {
      id: string;
      topUpId: string | null;
      paymentIntentId: string | null;
      chargeId: string | null;
      amount: Decimal | null;
      status: string | null;
    },
    em: EntityManager,
  ): Promise<StripeDispute> {
    await em.query(
      `INSERT INTO stripe_disputes (id, top_up_id, payment_intent_id, charge_id, amount, status)
       VALUES ($1, $2, $3, $4, $5::numeric, $6) ON CONFLICT (id) DO NOTHING`,
      [d.id, d.topUpId, d.paymentIntentId, d.chargeId, d.amount?.toFixed() ?? null, d.status],
    );
    // The UPDATE takes the row lock (waiting for a concurrent event about the dispute) and
    // returns the flags as that event left them.
    const rows = await sqlRows<StripeDisputeRow>(
      em,
      `UPDATE stripe_disputes SET top_up_id = COALESCE(top_up_id, $2),
         payment_intent_id = COALESCE(payment_intent_id, $3), charge_id = COALESCE(charge_id, $4),
         amount = COALESCE(amount, $5::numeric), status = COALESCE($6, status), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [d.id, d.topUpId, d.paymentIntentId, d.chargeId, d.amount?.toFixed() ?? null, d.status],
    );
    return toDispute(rows[0]);
  }

  async markDebited(id: string, debitedCredit: Decimal, em: EntityManager): Promise<void> {
    await em.query(
      `UPDATE stripe_disputes SET debited = true, debited_credit = $2::numeric, updated_at = now()
       WHERE id = $1`,
      [id, debitedCredit.toFixed()],
    );
  }

  async markReinstated(id: string, em: EntityManager): Promise<void> {
    await em.query(
      `UPDATE stripe_disputes SET reinstated = true, updated_at = now() WHERE id = $1`,
      [id],
    );
  }

  /** Attaches disputes recorded before their payment was known (same PaymentIntent). */
  async attach(topUpId: string, paymentIntentId: string, em: EntityManager): Promise<void> {
    await em.query(
      `UPDATE stripe_disputes SET top_up_id = $1, updated_at = now()
       WHERE payment_intent_id = $2 AND top_up_id IS NULL`,
      [topUpId, paymentIntentId],
    );
  }

  /** The top-up's disputes whose debit is still to be booked, oldest first, locked. */
  async lockOutstanding(topUpId: string, em: EntityManager): Promise<StripeDispute[]> {
    const rows = await sqlRows<StripeDisputeRow>(
      em,
      `SELECT ${COLUMNS} FROM stripe_disputes
       WHERE top_up_id = $1 AND NOT debited AND NOT reinstated
       ORDER BY created_at, id FOR UPDATE`,
      [topUpId],
    );
    return rows.map(toDispute);
  }
}
