import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import type Stripe from 'stripe';
import { DataSource, EntityManager } from 'typeorm';
import { formatAmount } from '../common/money/money.js';
import { LedgerService } from '../ledger/ledger.service.js';
import { HANDLED_EVENT_TYPES, isHandledType, isStripeId } from './dto/stripe-event.dto.js';
import { fromStripeCents, refundedCreditFor, toStripeCents } from './payments.math.js';
import { StripeEventsRepository } from './stripe-events.repository.js';
import { isUuid, TopUp, TopUpsRepository } from './top-ups.repository.js';

export { HANDLED_EVENT_TYPES };
type HandledEvent = Extract<Stripe.Event, { type: (typeof HANDLED_EVENT_TYPES)[number] }>;
const isHandled = (e: Stripe.Event): e is HandledEvent => isHandledType(e.type);

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
  | 'refund_unmatched'
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

/*
 * The signature proves Stripe sent an event, not that every field has the type Stripe's
 * typings promise (or that it is fit for PostgreSQL): fields of data.object are read as
 * unknown, and only checked ids and escaped text are stored.
 */

/**
 * An expandable reference (an id, or the expanded object carrying it): its id, null when
 * absent, or `malformed` when present but not a usable Stripe id.
 */
type Ref = { id: string | null; malformed: false } | { id: null; malformed: true };
function refOf(v: unknown): Ref {
  if (v === null || v === undefined) return { id: null, malformed: false };
  const id: unknown = typeof v === 'object' ? (v as { id?: unknown }).id : v;
  return isStripeId(id) ? { id, malformed: false } : { id: null, malformed: true };
}

/** Stripe metadata: string values by key; anything that is not an object has none. */
const metadataOf = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** Only the string "usd", in any case: not " usd", "usd\0", 840 or ["usd"]. */
const isUsd = (v: unknown): boolean => typeof v === 'string' && v.toLowerCase() === 'usd';

const SHOWN_MAX = 64;
/**
 * A value from Stripe as text for a review reason: short printable strings as they are,
 * other strings quoted with control characters escaped and cut at 64 characters, and other
 * values by their type. Never a NUL, which PostgreSQL refuses in text.
 */
function shown(v: unknown): string {
  if (typeof v === 'string') {
    if (/^[\x21-\x7e]+$/.test(v) && v.length <= SHOWN_MAX) return v;
    const cut = v.length > SHOWN_MAX ? `${v.slice(0, SHOWN_MAX)}…` : v;
    return JSON.stringify(cut).replace(
      /[\p{Cc}\p{Cs}]/gu,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  }
  if (v === null || v === undefined) return `no value (${String(v)})`;
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

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
    const metaId = metadataOf(session.metadata).topUpId;
    const id: unknown = isUuid(metaId) ? metaId : session.client_reference_id;
    return isUuid(id) ? this.topUps.lockById(id, em) : Promise.resolve(null);
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
    const paymentIntent = refOf(session.payment_intent);
    const sessionId: unknown = session.id;
    const problem = await this.reviewReason(topUp, session, amountPaid, paymentIntent, em);
    if (problem !== null || !isStripeId(sessionId)) {
      await this.topUps.markNeedsReview(
        topUp.id,
        {
          reason: problem ?? 'Stripe reported no usable session id',
          amountPaid,
          paymentIntentId: paymentIntent.id,
        },
        em,
      );
      return applied('needs_review');
    }
    const paid = await this.topUps.markPaid(
      topUp.id,
      // Equal to what Stripe reported, as reviewReason just checked.
      { amountPaid: topUp.price, paymentIntentId: paymentIntent.id, sessionId },
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

  /**
   * Why a reported payment cannot be credited as is; null when it can. Anything Stripe's
   * typings promise but the payload does not keep (a currency that is not a string, an
   * amount that is not a whole non-negative number of cents) is a reason, never an error.
   * Values from the payload appear escaped (see shown): the reason is stored as text.
   */
  private async reviewReason(
    topUp: TopUp,
    session: Stripe.Checkout.Session,
    amountPaid: Decimal | null,
    paymentIntent: Ref,
    em: EntityManager,
  ): Promise<string | null> {
    const status: unknown = session.payment_status;
    if (status !== 'paid') return `payment_status is ${shown(status)}, not paid`;
    const currency: unknown = session.currency;
    if (!isUsd(currency)) return `paid in ${shown(currency)}, not usd`;
    if (amountPaid === null) {
      return `Stripe reported no usable amount_total (${shown(session.amount_total)})`;
    }
    if (!amountPaid.eq(topUp.price)) {
      return `paid ${formatAmount(amountPaid)} USD, but the price is ${formatAmount(topUp.price)} USD`;
    }
    const accountId = metadataOf(session.metadata).accountId;
    if (accountId !== undefined && accountId !== topUp.accountId)
      return 'session metadata names another account';
    if (paymentIntent.malformed) return 'Stripe reported an unusable payment_intent';
    const sessionId: unknown = session.id;
    if (!isStripeId(sessionId)) return 'Stripe reported no usable session id';
    if (topUp.checkoutSessionId !== null && topUp.checkoutSessionId !== sessionId) {
      return `paid through session ${shown(sessionId)}, not the top-up's session ${topUp.checkoutSessionId}`;
    }
    if (topUp.checkoutSessionId === null) {
      // The session was never attached (creating it failed on our side): it must not be another top-up's.
      const owner = await this.topUps.findIdBySession(sessionId, em);
      if (owner !== null && owner !== topUp.id)
        return `paid through session ${shown(sessionId)}, which belongs to top-up ${owner}`;
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
    const paymentIntentId = refOf(session.payment_intent).id;
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
   * A refund without a usable amount, currency or charge id is recorded and debits nothing.
   */
  private async refund(charge: Stripe.Charge, em: EntityManager): Promise<Applied> {
    const paymentIntent = refOf(charge.payment_intent);
    if (paymentIntent.malformed) return { outcome: 'refund_unmatched', topUpId: null };
    const paymentIntentId = paymentIntent.id;
    const found = await this.lockRefundTopUp(charge, paymentIntentId, em);
    if (found === null) return { outcome: 'unknown_top_up', topUpId: null };
    if (found === 'unmatched') return { outcome: 'refund_unmatched', topUpId: null };
    const topUp = found;
    const applied = (outcome: WebhookOutcome): Applied => ({ outcome, topUpId: topUp.id });

    const amountRefunded: unknown = charge.amount_refunded;
    const chargeId: unknown = charge.id;
    const reported = fromStripeCents(amountRefunded);
    if (reported === null || !isUsd(charge.currency) || !isStripeId(chargeId))
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
    // amount_refunded is a safe non-negative integer here (fromStripeCents checked it).
    const reference = `${chargeId}:${toStripeCents(reported)}`;
    const debited = await this.debitRefund(topUp, refundedCash, reference, paymentIntentId, em);
    return applied(debited ? 'refund_debited' : 'refund_unchanged');
  }

  /**
   * The refunded charge's top-up, locked: the one its PaymentIntent paid. Else the one the
   * charge's metadata names (a refund may arrive before the payment event recorded the
   * PaymentIntent), but only when that top-up has no PaymentIntent yet or this same one, and
   * the metadata's accountId, if any, is the top-up's account: otherwise `unmatched`, so a
   * refund of some other payment never takes credit back from the top-up it names.
   */
  private async lockRefundTopUp(
    charge: Stripe.Charge,
    paymentIntentId: string | null,
    em: EntityManager,
  ): Promise<TopUp | 'unmatched' | null> {
    if (paymentIntentId !== null) {
      const paidBy = await this.topUps.lockByPaymentIntent(paymentIntentId, em);
      if (paidBy) return paidBy;
    }
    const metadata = metadataOf(charge.metadata);
    if (!isUuid(metadata.topUpId)) return null;
    const named = await this.topUps.lockById(metadata.topUpId, em);
    if (!named) return null;
    const samePayment = named.paymentIntentId === null || named.paymentIntentId === paymentIntentId;
    const sameAccount = metadata.accountId === undefined || metadata.accountId === named.accountId;
    return samePayment && sameAccount ? named : 'unmatched';
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
