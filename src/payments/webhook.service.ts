import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import type Stripe from 'stripe';
import { DataSource, EntityManager } from 'typeorm';
import { formatAmount } from '../common/money/money.js';
import { HANDLED_EVENT_TYPES, isHandledType, isStripeId } from './dto/stripe-event.dto.js';
import type { WebhookAckDto } from './dto/webhook.dto.js';
import { DisputeEventsService } from './dispute-events.service.js';
import { fromStripeCents } from './payments.math.js';
import { RefundEventsService } from './refund-events.service.js';
import { Applied, isUsd, metadataOf, Ref, refOf, shown, WebhookOutcome } from './stripe-objects.js';
import { StripeEventsRepository } from './stripe-events.repository.js';
import { isCredited, TopUpBooksService } from './top-up-books.service.js';
import { isUuid } from '../common/ids.js';
import { TopUp, TopUpsRepository } from './top-ups.repository.js';
import { toWebhookAckDto } from './webhook.mapper.js';

export { HANDLED_EVENT_TYPES };
type HandledEvent = Extract<Stripe.Event, { type: (typeof HANDLED_EVENT_TYPES)[number] }>;
const isHandled = (e: Stripe.Event): e is HandledEvent => isHandledType(e.type);

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
    @Inject(TopUpBooksService) private readonly books: TopUpBooksService,
    @Inject(RefundEventsService) private readonly refunds: RefundEventsService,
    @Inject(DisputeEventsService) private readonly disputes: DisputeEventsService,
  ) {}

  handle(event: Stripe.Event): Promise<WebhookAckDto> {
    return this.ds.transaction(async (em): Promise<WebhookAckDto> => {
      if (!(await this.events.claim(event.id, event.type, em))) {
        return toWebhookAckDto(true, (await this.events.outcomeOf(event.id, em)) ?? 'processed');
      }
      const applied: Applied = isHandled(event)
        ? await this.dispatch(event, em)
        : { outcome: 'ignored', topUpId: null };
      await this.events.finish(event.id, applied.topUpId, applied.outcome, em);
      return toWebhookAckDto(false, applied.outcome);
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
        return this.refunds.refunded(event.data.object, event.id, em);
      case 'charge.refund.updated':
      case 'refund.updated':
      case 'refund.failed':
        return this.refunds.updated(event.data.object, em);
      case 'charge.dispute.created':
      case 'charge.dispute.funds_withdrawn':
      case 'charge.dispute.funds_reinstated':
      case 'charge.dispute.closed':
        return this.disputes.apply(event.type, event.data.object, em);
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
    const paymentIntent = refOf(session.payment_intent);
    // Refunds and disputes reported before this payment wait under the PaymentIntent's lock.
    if (paymentIntent.id !== null) await this.topUps.lockPaymentIntent(paymentIntent.id, em);
    const topUp = await this.lockSessionTopUp(session, em);
    if (!topUp) return { outcome: 'unknown_top_up', topUpId: null };
    const applied = (outcome: WebhookOutcome): Applied => ({ outcome, topUpId: topUp.id });
    if (topUp.status === 'paid' || isCredited(topUp)) return applied('already_paid');
    if (topUp.status === 'needs_review') return applied('already_in_review');
    // An admin dismissed it: final, whatever Stripe reports later.
    if (topUp.resolution !== null) return applied('already_resolved');

    // pending, or failed/expired on our side while Stripe took the money: Stripe is the truth.
    const amountPaid = fromStripeCents(session.amount_total);
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
    await this.books.bookCredit(
      paid,
      `Top-up of ${formatAmount(topUp.credit)} USD credit (paid ${formatAmount(topUp.price)} USD)`,
      em,
    );
    // Refunds and disputes reported before the payment was recorded: they take their part now.
    await this.books.applyOutstanding(paid, em);
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
}
