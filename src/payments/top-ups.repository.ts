import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import { TopUpStatus } from './dto/top-up.dto.js';

/** The promotion a top-up was priced with, kept on the row: deleting the promotion changes nothing. */
export interface PromotionSnapshot {
  id: string;
  name: string;
  /** Decimal string, never a JSON number. */
  rate: string;
}

export interface TopUp {
  id: string;
  accountId: string;
  status: TopUpStatus;
  credit: Decimal;
  price: Decimal;
  currency: string;
  promotion: PromotionSnapshot | null;
  checkoutSessionId: string | null;
  checkoutUrl: string | null;
  paymentIntentId: string | null;
  amountPaid: Decimal | null;
  refundedCash: Decimal;
  refundedCredit: Decimal;
  reviewReason: string | null;
  paidAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  cursorAt: string;
}

interface TopUpRow {
  id: string;
  account_id: string;
  status: TopUpStatus;
  credit: string;
  price: string;
  currency: string;
  promotion: PromotionSnapshot | null;
  checkout_session_id: string | null;
  checkout_url: string | null;
  payment_intent_id: string | null;
  amount_paid: string | null;
  refunded_cash: string;
  refunded_credit: string;
  review_reason: string | null;
  paid_at: Date | null;
  created_at: Date;
  updated_at: Date;
  cursor_at: string;
}

const COLUMNS = `id, account_id, status, credit, price, currency, promotion, checkout_session_id, checkout_url,
  payment_intent_id, amount_paid, refunded_cash, refunded_credit, review_reason, paid_at, created_at, updated_at,
  created_at::text AS cursor_at`;

const toTopUp = (r: TopUpRow): TopUp => ({
  id: r.id,
  accountId: r.account_id,
  status: r.status,
  credit: money(r.credit),
  price: money(r.price),
  currency: r.currency,
  promotion: r.promotion,
  checkoutSessionId: r.checkout_session_id,
  checkoutUrl: r.checkout_url,
  paymentIntentId: r.payment_intent_id,
  amountPaid: r.amount_paid === null ? null : money(r.amount_paid),
  refundedCash: money(r.refunded_cash),
  refundedCredit: money(r.refunded_credit),
  reviewReason: r.review_reason,
  paidAt: r.paid_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  cursorAt: r.cursor_at,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);

/** SQL of the `top_ups` table. Status changes are conditional UPDATEs on the row locked by the caller. */
@Injectable()
export class TopUpsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insertPending(
    t: { accountId: string; credit: Decimal; price: Decimal; promotion: PromotionSnapshot | null },
    em: EntityManager = this.ds.manager,
  ): Promise<TopUp> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `INSERT INTO top_ups (account_id, status, credit, price, currency, promotion_id, promotion)
       VALUES ($1, 'pending', $2::numeric, $3::numeric, 'usd', $4, $5::jsonb)
       RETURNING ${COLUMNS}`,
      [
        t.accountId,
        t.credit.toFixed(),
        t.price.toFixed(),
        t.promotion?.id ?? null,
        t.promotion === null ? null : JSON.stringify(t.promotion),
      ],
    );
    return toTopUp(rows[0]);
  }

  /** Records the Checkout Session created for a pending top-up. */
  async attachCheckout(id: string, sessionId: string, url: string | null): Promise<TopUp | null> {
    const rows = await sqlRows<TopUpRow>(
      this.ds.manager,
      `UPDATE top_ups SET checkout_session_id = $2, checkout_url = $3, updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, sessionId, url],
    );
    return rows[0] ? toTopUp(rows[0]) : null;
  }

  async findById(id: string, em: EntityManager = this.ds.manager): Promise<TopUp | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<TopUpRow>(em, `SELECT ${COLUMNS} FROM top_ups WHERE id = $1`, [id]);
    return rows[0] ? toTopUp(rows[0]) : null;
  }

  /**
   * Locks the top-up until the caller's transaction ends: every Stripe event about one top-up
   * is applied one after the other, each seeing what the previous one wrote.
   */
  async lockById(id: string, em: EntityManager): Promise<TopUp | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<TopUpRow>(
      em,
      `SELECT ${COLUMNS} FROM top_ups WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0] ? toTopUp(rows[0]) : null;
  }

  async lockByPaymentIntent(paymentIntentId: string, em: EntityManager): Promise<TopUp | null> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `SELECT ${COLUMNS} FROM top_ups WHERE payment_intent_id = $1 ORDER BY created_at, id LIMIT 1 FOR UPDATE`,
      [paymentIntentId],
    );
    return rows[0] ? toTopUp(rows[0]) : null;
  }

  /** The top-up a Checkout Session was created for, if any (checkout_session_id is unique). */
  async findIdBySession(sessionId: string, em: EntityManager): Promise<string | null> {
    const rows = await sqlRows<{ id: string }>(
      em,
      `SELECT id FROM top_ups WHERE checkout_session_id = $1`,
      [sessionId],
    );
    return rows[0]?.id ?? null;
  }

  async listPage(accountId: string, limit: number, after: CursorKey | null): Promise<TopUp[]> {
    const rows = after
      ? await sqlRows<TopUpRow>(
          this.ds.manager,
          `SELECT ${COLUMNS} FROM top_ups WHERE account_id = $1 AND (created_at, id) < ($2::timestamptz, $3::uuid)
           ORDER BY created_at DESC, id DESC LIMIT $4`,
          [accountId, after[0], after[1], limit + 1],
        )
      : await sqlRows<TopUpRow>(
          this.ds.manager,
          `SELECT ${COLUMNS} FROM top_ups WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
          [accountId, limit + 1],
        );
    return rows.map(toTopUp);
  }

  /** Creating the Checkout Session failed: the top-up can never be paid. Only from pending. */
  async markCheckoutFailed(id: string): Promise<void> {
    await this.ds.query(
      `UPDATE top_ups SET status = 'failed', updated_at = now() WHERE id = $1 AND status = 'pending'`,
      [id],
    );
  }

  async markPaid(
    id: string,
    p: { amountPaid: Decimal; paymentIntentId: string | null; sessionId: string },
    em: EntityManager,
  ): Promise<TopUp> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `UPDATE top_ups SET status = 'paid', amount_paid = $2::numeric,
         payment_intent_id = COALESCE($3, payment_intent_id),
         checkout_session_id = COALESCE(checkout_session_id, $4),
         review_reason = NULL, paid_at = now(), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, p.amountPaid.toFixed(), p.paymentIntentId, p.sessionId],
    );
    return toTopUp(rows[0]);
  }

  async markNeedsReview(
    id: string,
    p: { reason: string; amountPaid: Decimal | null; paymentIntentId: string | null },
    em: EntityManager,
  ): Promise<void> {
    await em.query(
      `UPDATE top_ups SET status = 'needs_review', review_reason = $2, amount_paid = $3::numeric,
         payment_intent_id = COALESCE($4, payment_intent_id), updated_at = now()
       WHERE id = $1`,
      [id, p.reason, p.amountPaid?.toFixed() ?? null, p.paymentIntentId],
    );
  }

  /** Closes a top-up unpaid; only a pending one, so a paid top-up is never un-paid. */
  async closeUnpaid(id: string, status: 'failed' | 'expired', em: EntityManager): Promise<boolean> {
    const rows = await sqlRows<{ id: string }>(
      em,
      `UPDATE top_ups SET status = $2, updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING id`,
      [id, status],
    );
    return rows.length > 0;
  }

  /** Remembers the PaymentIntent of a session still waiting for an async payment. */
  async setPaymentIntent(id: string, paymentIntentId: string, em: EntityManager): Promise<void> {
    await em.query(
      `UPDATE top_ups SET payment_intent_id = COALESCE(payment_intent_id, $2), updated_at = now() WHERE id = $1`,
      [id, paymentIntentId],
    );
  }

  /**
   * Stores cumulative refund figures. Both only grow: an older refund event arriving late
   * cannot shrink what a newer one recorded.
   */
  async recordRefund(
    id: string,
    r: { refundedCash: Decimal; refundedCredit: Decimal; paymentIntentId: string | null },
    em: EntityManager,
  ): Promise<void> {
    await em.query(
      `UPDATE top_ups SET refunded_cash = GREATEST(refunded_cash, $2::numeric),
         refunded_credit = GREATEST(refunded_credit, $3::numeric),
         payment_intent_id = COALESCE(payment_intent_id, $4), updated_at = now()
       WHERE id = $1`,
      [id, r.refundedCash.toFixed(), r.refundedCredit.toFixed(), r.paymentIntentId],
    );
  }
}
