import { Inject, Injectable } from '@nestjs/common';
import type Stripe from 'stripe';
import { EntityManager } from 'typeorm';
import { isStripeId } from './dto/stripe-event.dto.js';
import { fromStripeCents } from './payments.math.js';
import { Applied, isUsd, refOf, statusOf, WebhookOutcome } from './stripe-objects.js';
import { StripeDisputesRepository } from './stripe-disputes.repository.js';
import { isCredited, TopUpBooksService } from './top-up-books.service.js';
import { TopUpsRepository } from './top-ups.repository.js';

/** Dispute closings that leave the money with us: nothing lost, the debit comes back. */
const CLOSED_IN_OUR_FAVOUR = new Set(['won', 'warning_closed']);

export type DisputeEventType =
  | 'charge.dispute.created'
  | 'charge.dispute.funds_withdrawn'
  | 'charge.dispute.funds_reinstated'
  | 'charge.dispute.closed';

/**
 * Dispute events. A dispute debits the disputed share of its top-up's credit once (on
 * whichever of created, funds_withdrawn or a lost closing arrives first) and books it back
 * once (on funds_reinstated or a closing won); a dispute won before its debit was applied is
 * never debited. Its row in stripe_disputes, locked with the top-up, remembers both, so any
 * order, replay or concurrency of its events books the same. Runs in the webhook's
 * transaction, after the event id was claimed.
 */
@Injectable()
export class DisputeEventsService {
  constructor(
    @Inject(TopUpsRepository) private readonly topUps: TopUpsRepository,
    @Inject(StripeDisputesRepository) private readonly disputes: StripeDisputesRepository,
    @Inject(TopUpBooksService) private readonly books: TopUpBooksService,
  ) {}

  async apply(
    type: DisputeEventType,
    dispute: Stripe.Dispute,
    em: EntityManager,
  ): Promise<Applied> {
    const disputeId: unknown = dispute.id;
    const paymentIntent = refOf(dispute.payment_intent);
    const charge = refOf(dispute.charge);
    if (!isStripeId(disputeId) || paymentIntent.malformed || charge.malformed) {
      return { outcome: 'dispute_ignored', topUpId: null };
    }
    const status = statusOf(dispute.status);
    const cash = fromStripeCents(dispute.amount);
    const amount = cash !== null && isUsd(dispute.currency) ? cash : null;

    // PaymentIntent lock first, then the top-up row, then the dispute row: the order every
    // handler takes them in.
    if (paymentIntent.id !== null) await this.topUps.lockPaymentIntent(paymentIntent.id, em);
    const topUp =
      (paymentIntent.id !== null
        ? await this.topUps.lockByPaymentIntent(paymentIntent.id, em)
        : null) ?? (charge.id !== null ? await this.topUps.lockByChargeId(charge.id, em) : null);
    const row = await this.disputes.lockOrCreate(
      {
        id: disputeId,
        topUpId: topUp?.id ?? null,
        paymentIntentId: paymentIntent.id,
        chargeId: charge.id,
        amount,
        status,
      },
      em,
    );
    const applied = (outcome: WebhookOutcome): Applied => ({
      outcome,
      topUpId: topUp?.id ?? null,
    });
    if (charge.id !== null && topUp !== null)
      await this.topUps.recordChargeId(topUp.id, charge.id, em);

    const reinstates =
      type === 'charge.dispute.funds_reinstated' ||
      (type === 'charge.dispute.closed' && status !== null && CLOSED_IN_OUR_FAVOUR.has(status));
    if (row.reinstated) return applied(topUp === null ? 'unknown_top_up' : 'dispute_unchanged');
    if (reinstates) {
      const back = await this.books.reinstateDispute(topUp, row, em);
      if (topUp === null) return applied('unknown_top_up');
      return applied(back.gt(0) ? 'dispute_reinstated' : 'dispute_recorded');
    }
    // created, funds_withdrawn, or closed otherwise (lost): the debit, once.
    if (topUp === null) return applied('unknown_top_up');
    if (row.debited) return applied('dispute_unchanged');
    // Never credited (yet): kept, and debited when the credit is booked.
    if (!isCredited(topUp)) return applied('dispute_recorded');
    const { debited } = await this.books.debitDispute(topUp, row, em);
    if (debited === null) return applied('dispute_ignored');
    return applied(debited.gt(0) ? 'dispute_debited' : 'dispute_recorded');
  }
}
