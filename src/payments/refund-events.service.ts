import { Inject, Injectable } from '@nestjs/common';
import type Stripe from 'stripe';
import { EntityManager } from 'typeorm';
import { isStripeId } from './dto/stripe-event.dto.js';
import { fromStripeCents, toStripeCents } from './payments.math.js';
import { Applied, isUsd, metadataOf, refOf, statusOf, WebhookOutcome } from './stripe-objects.js';
import { StripeRefundsRepository } from './stripe-refunds.repository.js';
import { isCredited, TopUpBooksService } from './top-up-books.service.js';
import { isUuid } from '../common/ids.js';
import { TopUp, TopUpsRepository } from './top-ups.repository.js';

/** Refund statuses after which the refund's money came back to us. */
const FAILED_REFUND = new Set(['failed', 'canceled']);

/**
 * Refund events: `charge.refunded` (Stripe's running total of cash refunded on a charge) and
 * `charge.refund.updated` / `refund.updated` / `refund.failed` (one refund's status). Runs in
 * the webhook's transaction, after the event id was claimed.
 */
@Injectable()
export class RefundEventsService {
  constructor(
    @Inject(TopUpsRepository) private readonly topUps: TopUpsRepository,
    @Inject(StripeRefundsRepository) private readonly refunds: StripeRefundsRepository,
    @Inject(TopUpBooksService) private readonly books: TopUpBooksService,
  ) {}

  /**
   * `amount_refunded` is cumulative for the charge, so each event states the total refunded
   * so far. The credit to take back is derived from that total and only the part not yet
   * taken back is debited: replays, duplicates and events in any order debit it once.
   * A refund without a usable amount, currency or charge id is recorded and debits nothing.
   */
  async refunded(charge: Stripe.Charge, eventId: string, em: EntityManager): Promise<Applied> {
    const paymentIntent = refOf(charge.payment_intent);
    if (paymentIntent.malformed) return { outcome: 'refund_unmatched', topUpId: null };
    const paymentIntentId = paymentIntent.id;
    if (paymentIntentId !== null) await this.topUps.lockPaymentIntent(paymentIntentId, em);
    const found = await this.lockChargeTopUp(charge, paymentIntentId, em);
    if (found === null) return { outcome: 'unknown_top_up', topUpId: null };
    if (found === 'unmatched') return { outcome: 'refund_unmatched', topUpId: null };
    const applied = (outcome: WebhookOutcome): Applied => ({ outcome, topUpId: found.id });

    const chargeId: unknown = charge.id;
    const reported = fromStripeCents(charge.amount_refunded);
    if (reported === null || !isUsd(charge.currency) || !isStripeId(chargeId))
      return applied('refund_ignored');
    const grew = reported.gt(found.refundedCash);
    const topUp = await this.topUps.recordRefundedCash(
      found.id,
      { refundedCash: reported, chargeId, paymentIntentId },
      em,
    );
    // Never credited (yet): nothing to take back now. Kept, so a later credit nets it out.
    if (!isCredited(topUp)) return applied('refund_recorded');
    // amount_refunded is a safe non-negative integer here (fromStripeCents checked it). A
    // running total seen for the first time names its entry; a debit without a new total
    // (room a won dispute gave back) is named by its event, which is processed once.
    const cents = toStripeCents(reported);
    const reference = grew ? `${chargeId}:${cents}` : `${chargeId}:${cents}:${eventId}`;
    const { taken } = await this.books.syncRefunds(topUp, reference, em);
    return applied(
      taken.gt(0) ? 'refund_debited' : taken.lt(0) ? 'refund_reversed' : 'refund_unchanged',
    );
  }

  /**
   * One refund's new status. A refund that failed or was canceled gives back the credit it
   * took, once per refund id: its row remembers the failure, and the credit refunds take is
   * recomputed from Stripe's running total less every failed refund. A failure reported
   * before the refund's running total, or before the payment, is kept and counted then.
   */
  async updated(refund: Stripe.Refund, em: EntityManager): Promise<Applied> {
    const refundId: unknown = refund.id;
    const amount = fromStripeCents(refund.amount);
    const paymentIntent = refOf(refund.payment_intent);
    const charge = refOf(refund.charge);
    if (
      !isStripeId(refundId) ||
      amount === null ||
      !isUsd(refund.currency) ||
      paymentIntent.malformed ||
      charge.malformed
    ) {
      return { outcome: 'refund_ignored', topUpId: null };
    }
    const status = statusOf(refund.status) ?? 'unknown';
    if (paymentIntent.id !== null) await this.topUps.lockPaymentIntent(paymentIntent.id, em);
    const topUp =
      (paymentIntent.id !== null
        ? await this.topUps.lockByPaymentIntent(paymentIntent.id, em)
        : null) ?? (charge.id !== null ? await this.topUps.lockByChargeId(charge.id, em) : null);
    const row = await this.refunds.lockOrCreate(
      {
        id: refundId,
        topUpId: topUp?.id ?? null,
        paymentIntentId: paymentIntent.id,
        chargeId: charge.id,
        amount,
        status,
      },
      em,
    );
    const failed = FAILED_REFUND.has(status);
    await this.refunds.update(refundId, { status, failed, topUpId: topUp?.id ?? null }, em);
    if (topUp === null) return { outcome: 'unknown_top_up', topUpId: null };
    const applied = (outcome: WebhookOutcome): Applied => ({ outcome, topUpId: topUp.id });
    if (!failed || row.failed) return applied('refund_unchanged');
    const { taken } = await this.books.syncRefunds(topUp, `${refundId}:failed`, em);
    return applied(taken.lt(0) ? 'refund_reversed' : 'refund_recorded');
  }

  /**
   * The refunded charge's top-up, locked: the one its PaymentIntent paid. Else the one the
   * charge's metadata names (a refund may arrive before the payment event recorded the
   * PaymentIntent), but only when that top-up has no PaymentIntent yet or this same one, and
   * the metadata's accountId, if any, is the top-up's account: otherwise `unmatched`, so a
   * refund of some other payment never takes credit back from the top-up it names.
   */
  private async lockChargeTopUp(
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
}
