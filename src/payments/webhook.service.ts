import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import type Stripe from 'stripe';
import { DataSource, EntityManager } from 'typeorm';
import { formatAmount } from '../common/money/money.js';
import { LedgerService } from '../ledger/ledger.service.js';
import { fromStripeCents, refundedCreditFor, toStripeCents } from './payments.math.js';
import { StripeEventsRepository } from './stripe-events.repository.js';
import { isUuid, TopUp, TopUpsRepository } from './top-ups.repository.js';

/** The Stripe events that change a top-up; every other type is recorded and ignored. */
export const HANDLED_EVENT_TYPES = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
  'charge.refunded',
] as const;
type HandledEvent = Extract<Stripe.Event, { type: (typeof HANDLED_EVENT_TYPES)[number] }>;
const isHandled = (e: Stripe.Event): e is HandledEvent =>
  (HANDLED_EVENT_TYPES as readonly string[]).includes(e.type);

export type WebhookOutcome =
  | 'credited'
  | 'already_paid'
  | 'already_in_review'
  | 'needs_review'
  | 'awaiting_payment'
  | 'failed'
  | 'expired'
  | 'not_pending'
  | 'refund_debited'
  | 'refund_unchanged'
  | 'refund_recorded'
  | 'refund_ignored'
  | 'unknown_top_up'
  | 'ignored';

interface Applied {
  outcome: WebhookOutcome;
  topUpId: string | null;
}

export interface WebhookResult {
  duplicate: boolean;
  outcome: string;
}

const idOf = (v: string | { id: string } | null): string | null =>
  v === null ? null : typeof v === 'string' ? v : v.id;

/**
 * Applies verified Stripe events to top-ups, each at most once: the event id is claimed in
 * the same transaction as its effect (status change and ledger booking), so a replay, a
 * concurrent copy or a crash between the two cannot credit twice or lose a credit. Every
 * effect works on the top-up row locked FOR UPDATE, so events about one top-up apply one at a
 * time, and each handler accepts the state any earlier or later event left.
 */
@Injectable()
export class WebhookService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(StripeEventsRepository) private readonly events: StripeEventsRepository,
    @Inject(TopUpsRepository) private readonly topUps: TopUpsRepository,
    @Inject(LedgerService) private readonly ledger: LedgerService,
  ) {}

  handle(event: Stripe.Event): Promise<WebhookResult> {
    return this.ds.transaction(async (em) => {
      if (!(await this.events.claim(event.id, event.type, em))) {
        return {
          duplicate: true,
          outcome: (await this.events.outcomeOf(event.id, em)) ?? 'processed',
        };
      }
      const applied: Applied = isHandled(event)
        ? await this.dispatch(event, em)
        : { outcome: 'ignored', topUpId: null };
      await this.events.finish(event.id, applied.topUpId, applied.outcome, em);
      return { duplicate: false, outcome: applied.outcome };
    });
  }

  private async dispatch(event: HandledEvent, em: EntityManager): Promise<Applied> {
    switch (event.type) {
      case 'checkout.session.completed': {
        const session = event.data.object;
        // Async methods (bank debits) complete the session unpaid; async_payment_* follows.
        if (session.payment_status === 'unpaid') return this.awaitPayment(session, em);
        return this.settle(session, em);
      }
      case 'checkout.session.async_payment_succeeded':
        return this.settle(event.data.object, em);
      case 'checkout.session.async_payment_failed':
        return this.closeUnpaid(event.data.object, 'failed', em);
      case 'checkout.session.expired':
        return this.closeUnpaid(event.data.object, 'expired', em);
      case 'charge.refunded':
        return this.refund(event.data.object, em);
    }
  }

  /** The session's top-up, locked: by our metadata, else by client_reference_id. */
  private lockSessionTopUp(
    session: Stripe.Checkout.Session,
    em: EntityManager,
  ): Promise<TopUp | null> {
    const metaId = session.metadata?.topUpId;
    const id = isUuid(metaId) ? metaId : session.client_reference_id;
    return id ? this.topUps.lockById(id, em) : Promise.resolve(null);
  }

  /** Payment confirmed: credit once when the amount is exactly the price, else flag for review. */
  private async settle(session: Stripe.Checkout.Session, em: EntityManager): Promise<Applied> {
    const topUp = await this.lockSessionTopUp(session, em);
    if (!topUp) return { outcome: 'unknown_top_up', topUpId: null };
    const applied = (outcome: WebhookOutcome): Applied => ({ outcome, topUpId: topUp.id });
    if (topUp.status === 'paid') return applied('already_paid');
    if (topUp.status === 'needs_review') return applied('already_in_review');

    // pending, or failed/expired on our side while Stripe took the money: Stripe is the truth.
    const amountPaid = fromStripeCents(session.amount_total);
    const paymentIntentId = idOf(session.payment_intent);
    const problem = this.reviewReason(topUp, session, amountPaid);
    if (problem !== null) {
      await this.topUps.markNeedsReview(
        topUp.id,
        { reason: problem, amountPaid, paymentIntentId },
        em,
      );
      return applied('needs_review');
    }
    const paid = await this.topUps.markPaid(
      topUp.id,
      // Equal to what Stripe reported, as reviewReason just checked.
      { amountPaid: topUp.price, paymentIntentId, sessionId: session.id },
      em,
    );
    await this.ledger.book(
      {
        accountId: topUp.accountId,
        type: 'top_up',
        amount: topUp.credit,
        reference: topUp.id,
        description: `Top-up of ${formatAmount(topUp.credit)} USD credit (paid ${formatAmount(topUp.price)} USD)`,
      },
      em,
    );
    // A refund reported before the payment was recorded but not debited: debit it now.
    if (paid.refundedCash.gt(0)) {
      const reference = `${topUp.id}:refund:${toStripeCents(paid.refundedCash)}`;
      await this.debitRefund(paid, paid.refundedCash, reference, null, em);
    }
    return applied('credited');
  }

  /** Why a reported payment cannot be credited as is; null when it can. */
  private reviewReason(
    topUp: TopUp,
    session: Stripe.Checkout.Session,
    amountPaid: Decimal | null,
  ): string | null {
    if (session.payment_status !== 'paid')
      return `payment_status is ${session.payment_status}, not paid`;
    if ((session.currency ?? '').toLowerCase() !== 'usd')
      return `paid in ${session.currency ?? 'no currency'}, not usd`;
    if (amountPaid === null) return 'Stripe reported no amount_total';
    if (!amountPaid.eq(topUp.price)) {
      return `paid ${formatAmount(amountPaid)} USD, but the price is ${formatAmount(topUp.price)} USD`;
    }
    const accountId = session.metadata?.accountId;
    if (accountId !== undefined && accountId !== topUp.accountId)
      return 'session metadata names another account';
    if (topUp.checkoutSessionId !== null && topUp.checkoutSessionId !== session.id) {
      return `paid through session ${session.id}, not the top-up's session ${topUp.checkoutSessionId}`;
    }
    return null;
  }

  /** Completed but the (async) payment is still processing: stays pending. */
  private async awaitPayment(
    session: Stripe.Checkout.Session,
    em: EntityManager,
  ): Promise<Applied> {
    const topUp = await this.lockSessionTopUp(session, em);
    if (!topUp) return { outcome: 'unknown_top_up', topUpId: null };
    if (topUp.status !== 'pending') return { outcome: 'not_pending', topUpId: topUp.id };
    const paymentIntentId = idOf(session.payment_intent);
    if (paymentIntentId !== null) await this.topUps.setPaymentIntent(topUp.id, paymentIntentId, em);
    return { outcome: 'awaiting_payment', topUpId: topUp.id };
  }

  /** Closes a pending top-up unpaid; a paid (or flagged) top-up is never changed by this. */
  private async closeUnpaid(
    session: Stripe.Checkout.Session,
    status: 'failed' | 'expired',
    em: EntityManager,
  ): Promise<Applied> {
    const topUp = await this.lockSessionTopUp(session, em);
    if (!topUp) return { outcome: 'unknown_top_up', topUpId: null };
    const closed = await this.topUps.closeUnpaid(topUp.id, status, em);
    return { outcome: closed ? status : 'not_pending', topUpId: topUp.id };
  }

  /**
   * `amount_refunded` is cumulative for the charge, so each event states the total refunded
   * so far. The credit to take back is derived from that total and only the part not yet
   * taken back is debited: replays, duplicates and events in any order debit it once.
   */
  private async refund(charge: Stripe.Charge, em: EntityManager): Promise<Applied> {
    const paymentIntentId = idOf(charge.payment_intent);
    let topUp =
      paymentIntentId === null ? null : await this.topUps.lockByPaymentIntent(paymentIntentId, em);
    // The refund may arrive before the payment event recorded the PaymentIntent.
    const metaId = charge.metadata?.topUpId;
    if (!topUp && isUuid(metaId)) topUp = await this.topUps.lockById(metaId, em);
    if (!topUp) return { outcome: 'unknown_top_up', topUpId: null };
    const applied = (outcome: WebhookOutcome): Applied => ({ outcome, topUpId: topUp.id });

    const reported = fromStripeCents(charge.amount_refunded);
    if (reported === null || charge.currency.toLowerCase() !== 'usd')
      return applied('refund_ignored');
    const refundedCash = reported.gt(topUp.refundedCash) ? reported : topUp.refundedCash;

    if (topUp.status !== 'paid') {
      // Never credited (yet): nothing to take back now. Kept, so a later credit nets it out.
      await this.topUps.recordRefund(
        topUp.id,
        { refundedCash, refundedCredit: topUp.refundedCredit, paymentIntentId },
        em,
      );
      return applied('refund_recorded');
    }
    const reference = `${charge.id}:${charge.amount_refunded}`;
    const debited = await this.debitRefund(topUp, refundedCash, reference, paymentIntentId, em);
    return applied(debited ? 'refund_debited' : 'refund_unchanged');
  }

  /**
   * Debits the credit a cumulative cash refund takes back, minus what earlier refunds took,
   * and stores both totals. Returns whether anything was debited.
   */
  private async debitRefund(
    topUp: TopUp,
    refundedCash: Decimal,
    reference: string,
    paymentIntentId: string | null,
    em: EntityManager,
  ): Promise<boolean> {
    const target = refundedCreditFor(topUp.credit, topUp.price, refundedCash);
    const delta = target.minus(topUp.refundedCredit);
    if (delta.gt(0)) {
      await this.ledger.book(
        {
          accountId: topUp.accountId,
          type: 'refund',
          amount: delta.negated(),
          reference,
          description: `Refund on top-up ${topUp.id}: ${formatAmount(refundedCash)} of ${formatAmount(topUp.price)} USD refunded`,
        },
        em,
      );
    }
    await this.topUps.recordRefund(
      topUp.id,
      { refundedCash, refundedCredit: target, paymentIntentId },
      em,
    );
    return delta.gt(0);
  }
}
