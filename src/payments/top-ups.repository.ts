import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import { ResolveAction, TopUpStatus } from './dto/top-up.dto.js';
import { isUuid } from '../common/ids.js';

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
  /** Stripe's running total of cash refunded (amount_refunded), failed refunds included. */
  refundedCash: Decimal;
  /** Cash of refunds Stripe reported failed or canceled. */
  failedRefundCash: Decimal;
  refundedCredit: Decimal;
  disputedCredit: Decimal;
  chargeId: string | null;
  reviewReason: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  resolution: { action: ResolveAction; note: string; resolvedAt: Date } | null;
  /** Set when the credit was booked (by a payment, or by an admin's credit resolution). */
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
  failed_refund_cash: string;
  refunded_credit: string;
  disputed_credit: string;
  charge_id: string | null;
  review_reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  resolution: ResolveAction | null;
  resolution_note: string | null;
  resolved_at: Date | null;
  paid_at: Date | null;
  created_at: Date;
  updated_at: Date;
  cursor_at: string;
}

const COLUMNS = `id, account_id, status, credit, price, currency, promotion, checkout_session_id, checkout_url,
  payment_intent_id, amount_paid, refunded_cash, failed_refund_cash, refunded_credit, disputed_credit, charge_id,
  review_reason, idempotency_key, request_hash, resolution, resolution_note, resolved_at, paid_at, created_at,
  updated_at, created_at::text AS cursor_at`;

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
  failedRefundCash: money(r.failed_refund_cash),
  refundedCredit: money(r.refunded_credit),
  disputedCredit: money(r.disputed_credit),
  chargeId: r.charge_id,
  reviewReason: r.review_reason,
  idempotencyKey: r.idempotency_key,
  requestHash: r.request_hash,
  resolution:
    r.resolution === null || r.resolved_at === null
      ? null
      : { action: r.resolution, note: r.resolution_note ?? '', resolvedAt: r.resolved_at },
  paidAt: r.paid_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  cursorAt: r.cursor_at,
});

/** SQL of the `top_ups` table. Status changes are conditional UPDATEs on the row locked by the caller. */
@Injectable()
export class TopUpsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Inserts a pending top-up. With an idempotency key, the unique (account_id,
   * idempotency_key) index makes a second insert under the key fail rather than duplicate.
   */
  async insertPending(
    t: {
      accountId: string;
      credit: Decimal;
      price: Decimal;
      promotion: PromotionSnapshot | null;
      idempotencyKey: string | null;
      requestHash: string | null;
    },
    em: EntityManager = this.ds.manager,
  ): Promise<TopUp> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `INSERT INTO top_ups (account_id, status, credit, price, currency, promotion_id, promotion,
                            idempotency_key, request_hash)
       VALUES ($1, 'pending', $2::numeric, $3::numeric, 'usd', $4, $5::jsonb, $6, $7)
       RETURNING ${COLUMNS}`,
      [
        t.accountId,
        t.credit.toFixed(),
        t.price.toFixed(),
        t.promotion?.id ?? null,
        t.promotion === null ? null : JSON.stringify(t.promotion),
        t.idempotencyKey,
        t.requestHash,
      ],
    );
    return toTopUp(rows[0]);
  }

  /**
   * Serialises the creation of one account's top-ups until the transaction ends (an advisory
   * lock: no other table is touched), so the pending count read next cannot be raced past.
   */
  async lockAccountTopUps(accountId: string, em: EntityManager): Promise<void> {
    await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('top-ups:' || $1, 0))`, [
      accountId,
    ]);
  }

  /**
   * Pending top-ups of the account created in the last 24 hours: a Checkout Session cannot be
   * paid after that (Stripe expires it), so an older one no longer holds a place.
   */
  async countPending(accountId: string, em: EntityManager): Promise<number> {
    const rows = await sqlRows<{ n: string }>(
      em,
      `SELECT count(*) AS n FROM top_ups
       WHERE account_id = $1 AND status = 'pending' AND created_at > now() - interval '24 hours'`,
      [accountId],
    );
    return Number.parseInt(rows[0]?.n ?? '0', 10);
  }

  async findByIdempotencyKey(
    accountId: string,
    idempotencyKey: string,
    em: EntityManager = this.ds.manager,
  ): Promise<TopUp | null> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `SELECT ${COLUMNS} FROM top_ups WHERE account_id = $1 AND idempotency_key = $2`,
      [accountId, idempotencyKey],
    );
    return rows[0] ? toTopUp(rows[0]) : null;
  }

  /**
   * Records the Checkout Session created for a top-up. Only the first session sticks: a replay
   * of the create (same Stripe idempotency key) reports the same one.
   */
  async attachCheckout(id: string, sessionId: string, url: string | null): Promise<TopUp | null> {
    const rows = await sqlRows<TopUpRow>(
      this.ds.manager,
      `UPDATE top_ups SET checkout_session_id = $2, checkout_url = $3, updated_at = now()
       WHERE id = $1 AND (checkout_session_id IS NULL OR checkout_session_id = $2) RETURNING ${COLUMNS}`,
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

  /**
   * Serialises everything about one Stripe PaymentIntent until the transaction ends: taken
   * before any top-up row lock by every handler that matches by PaymentIntent, so a dispute
   * or refund recorded before its payment is known cannot miss being attached to it.
   */
  async lockPaymentIntent(paymentIntentId: string, em: EntityManager): Promise<void> {
    await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('stripe-pi:' || $1, 0))`, [
      paymentIntentId,
    ]);
  }

  async lockByChargeId(chargeId: string, em: EntityManager): Promise<TopUp | null> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `SELECT ${COLUMNS} FROM top_ups WHERE charge_id = $1 ORDER BY created_at, id LIMIT 1 FOR UPDATE`,
      [chargeId],
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

  /** Every account's top-ups, newest first, optionally in one status (index top_ups_status_created). */
  async listAll(
    status: TopUpStatus | null,
    limit: number,
    after: CursorKey | null,
  ): Promise<TopUp[]> {
    const rows = await sqlRows<TopUpRow>(
      this.ds.manager,
      `SELECT ${COLUMNS} FROM top_ups
       WHERE ($1::text IS NULL OR status = $1)
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [status, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    return rows.map(toTopUp);
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
   * Stores Stripe's running refund total, which only grows: an older refund event arriving
   * late cannot shrink what a newer one recorded. Also remembers the charge and PaymentIntent.
   */
  async recordRefundedCash(
    id: string,
    r: { refundedCash: Decimal; chargeId: string | null; paymentIntentId: string | null },
    em: EntityManager,
  ): Promise<TopUp> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `UPDATE top_ups SET refunded_cash = GREATEST(refunded_cash, $2::numeric),
         charge_id = COALESCE(charge_id, $3), payment_intent_id = COALESCE(payment_intent_id, $4),
         updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, r.refundedCash.toFixed(), r.chargeId, r.paymentIntentId],
    );
    return toTopUp(rows[0]);
  }

  /** The credit refunds now take back and the failed refunds' cash, on the row locked by the caller. */
  async setRefunded(
    id: string,
    r: { refundedCredit: Decimal; failedRefundCash: Decimal },
    em: EntityManager,
  ): Promise<TopUp> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `UPDATE top_ups SET refunded_credit = $2::numeric, failed_refund_cash = $3::numeric, updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, r.refundedCredit.toFixed(), r.failedRefundCash.toFixed()],
    );
    return toTopUp(rows[0]);
  }

  /** Adds (or, negative, removes) credit held back by disputes, on the row locked by the caller. */
  async addDisputed(id: string, delta: Decimal, em: EntityManager): Promise<TopUp> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `UPDATE top_ups SET disputed_credit = disputed_credit + $2::numeric, updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, delta.toFixed()],
    );
    return toTopUp(rows[0]);
  }

  async recordChargeId(id: string, chargeId: string, em: EntityManager): Promise<void> {
    await em.query(
      `UPDATE top_ups SET charge_id = COALESCE(charge_id, $2), updated_at = now() WHERE id = $1`,
      [id, chargeId],
    );
  }

  /**
   * Flags a credited top-up for an admin (refunds above the amount paid, a dispute without a
   * usable amount). Only a paid top-up never resolved: an admin's decision is final.
   */
  async flagForReview(id: string, reason: string, em: EntityManager): Promise<boolean> {
    const rows = await sqlRows<{ id: string }>(
      em,
      `UPDATE top_ups SET status = 'needs_review', review_reason = $2, updated_at = now()
       WHERE id = $1 AND status = 'paid' AND resolution IS NULL RETURNING id`,
      [id, reason],
    );
    return rows.length > 0;
  }

  /**
   * An admin's final decision on a needs_review top-up (locked by the caller): only one that
   * is still in review and unresolved, so two concurrent decisions cannot both apply.
   */
  async resolve(
    id: string,
    r: { action: ResolveAction; note: string; status: 'paid' | 'failed'; credited: boolean },
    em: EntityManager,
  ): Promise<TopUp | null> {
    const rows = await sqlRows<TopUpRow>(
      em,
      `UPDATE top_ups SET status = $2, resolution = $3, resolution_note = $4, resolved_at = now(),
         paid_at = CASE WHEN $5 THEN now() ELSE paid_at END, updated_at = now()
       WHERE id = $1 AND status = 'needs_review' AND resolution IS NULL RETURNING ${COLUMNS}`,
      [id, r.status, r.action, r.note, r.credited],
    );
    return rows[0] ? toTopUp(rows[0]) : null;
  }
}
