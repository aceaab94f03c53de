import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { EntityManager } from 'typeorm';
import { formatAmount, ZERO } from '../common/money/money.js';
import { LedgerService } from '../ledger/ledger.service.js';
import {
  disputedCreditFor,
  effectiveRefundedCash,
  refundedCreditFor,
  toStripeCents,
} from './payments.math.js';
import { StripeDispute, StripeDisputesRepository } from './stripe-disputes.repository.js';
import { StripeRefundsRepository } from './stripe-refunds.repository.js';
import { TopUp, TopUpsRepository } from './top-ups.repository.js';

/** The top-up's credit was booked (by its payment, or by an admin's credit resolution). */
export const isCredited = (t: TopUp): boolean => t.paidAt !== null;

/**
 * The books of one top-up: its credit, what refunds take back and what disputes hold back,
 * each booked to the ledger as it changes. Every method works on the top-up row the caller
 * locked in its transaction. Invariant (a CHECK on top_ups): refunded + disputed credit never
 * exceeds the credit.
 */
@Injectable()
export class TopUpBooksService {
  constructor(
    @Inject(LedgerService) private readonly ledger: LedgerService,
    @Inject(TopUpsRepository) private readonly topUps: TopUpsRepository,
    @Inject(StripeRefundsRepository) private readonly refunds: StripeRefundsRepository,
    @Inject(StripeDisputesRepository) private readonly disputes: StripeDisputesRepository,
  ) {}

  async bookCredit(topUp: TopUp, description: string, em: EntityManager): Promise<void> {
    // The ledger's unique (type, reference) makes a second credit of one top-up impossible.
    await this.ledger.book(
      {
        accountId: topUp.accountId,
        type: 'top_up',
        amount: topUp.credit,
        reference: topUp.id,
        description,
      },
      em,
    );
  }

  /**
   * Moves the credit refunds take back to what they take now: credit × (Stripe's running
   * total − failed refunds) ÷ price, never more than disputes left, and books the difference
   * as a `refund` entry (a debit, or a credit when a refund failed). Nothing while the credit
   * was never booked. Refunds above the amount paid flag a paid top-up for review. Returns
   * the top-up as stored and the credit taken (negative: given back).
   */
  async syncRefunds(
    topUp: TopUp,
    reference: string,
    em: EntityManager,
  ): Promise<{ topUp: TopUp; taken: Decimal }> {
    const failedCash = await this.refunds.failedCash(topUp.id, em);
    const refundedCash = effectiveRefundedCash(topUp.refundedCash, failedCash);
    if (!isCredited(topUp)) {
      const stored = await this.topUps.setRefunded(
        topUp.id,
        { refundedCredit: topUp.refundedCredit, failedRefundCash: failedCash },
        em,
      );
      return { topUp: stored, taken: ZERO };
    }
    const room = topUp.credit.minus(topUp.disputedCredit);
    const full = refundedCreditFor(topUp.credit, topUp.price, refundedCash);
    const target = full.gt(room) ? room : full;
    const delta = target.minus(topUp.refundedCredit);
    if (!delta.isZero()) {
      const what = `${formatAmount(refundedCash)} of ${formatAmount(topUp.price)} USD refunded`;
      await this.ledger.book(
        {
          accountId: topUp.accountId,
          type: 'refund',
          amount: delta.negated(),
          reference,
          description: delta.gt(0)
            ? `Refund on top-up ${topUp.id}: ${what}`
            : `Refund on top-up ${topUp.id} failed or was canceled: credit given back (${what})`,
        },
        em,
      );
    }
    let stored = await this.topUps.setRefunded(
      topUp.id,
      { refundedCredit: target, failedRefundCash: failedCash },
      em,
    );
    const paid = stored.amountPaid ?? stored.price;
    if (refundedCash.gt(paid)) {
      const reason = `refunds of ${formatAmount(refundedCash)} USD exceed the ${formatAmount(paid)} USD paid`;
      if (await this.topUps.flagForReview(topUp.id, reason, em)) {
        stored = (await this.topUps.lockById(topUp.id, em)) ?? stored;
      }
    }
    return { topUp: stored, taken: delta };
  }

  /**
   * Books a dispute's debit once: credit × disputed cash ÷ price, never more than refunds and
   * earlier disputes left (possibly nothing, then only recorded). A dispute without a usable
   * amount debits nothing and flags the top-up for review. Returns the credit held back.
   */
  async debitDispute(
    topUp: TopUp,
    dispute: StripeDispute,
    em: EntityManager,
  ): Promise<{ topUp: TopUp; debited: Decimal | null }> {
    if (dispute.amount === null) {
      await this.topUps.flagForReview(
        topUp.id,
        `dispute ${dispute.id} was reported without a usable USD amount`,
        em,
      );
      return { topUp: (await this.topUps.lockById(topUp.id, em)) ?? topUp, debited: null };
    }
    const room = topUp.credit.minus(topUp.refundedCredit).minus(topUp.disputedCredit);
    const debit = disputedCreditFor(topUp.credit, topUp.price, dispute.amount, room);
    await this.disputes.markDebited(dispute.id, debit, em);
    if (debit.isZero()) return { topUp, debited: debit };
    await this.ledger.book(
      {
        accountId: topUp.accountId,
        type: 'dispute',
        amount: debit.negated(),
        reference: dispute.id,
        description: `Dispute ${dispute.id} on top-up ${topUp.id}: ${formatAmount(dispute.amount)} of ${formatAmount(topUp.price)} USD disputed`,
      },
      em,
    );
    return { topUp: await this.topUps.addDisputed(topUp.id, debit, em), debited: debit };
  }

  /**
   * Marks a dispute won (or its funds reinstated), once: books back what its debit took, if
   * it was debited; a dispute not yet debited never will be. Refunds that the dispute left no
   * room for then take their part. Returns the credit given back.
   */
  async reinstateDispute(
    topUp: TopUp | null,
    dispute: StripeDispute,
    em: EntityManager,
  ): Promise<Decimal> {
    await this.disputes.markReinstated(dispute.id, em);
    if (topUp === null || !dispute.debited || dispute.debitedCredit.isZero()) return ZERO;
    await this.ledger.book(
      {
        accountId: topUp.accountId,
        type: 'dispute',
        amount: dispute.debitedCredit,
        reference: `${dispute.id}:reinstated`,
        description: `Dispute ${dispute.id} on top-up ${topUp.id} closed in our favour: credit given back`,
      },
      em,
    );
    const after = await this.topUps.addDisputed(topUp.id, dispute.debitedCredit.negated(), em);
    await this.syncRefunds(after, `${dispute.id}:refunds`, em);
    return dispute.debitedCredit;
  }

  /**
   * Right after the credit was booked: the refunds and disputes Stripe reported before (also
   * those recorded before the payment was known, attached now by PaymentIntent) take their
   * part, refunds first. The caller holds the PaymentIntent's lock.
   */
  async applyOutstanding(topUp: TopUp, em: EntityManager): Promise<TopUp> {
    if (topUp.paymentIntentId !== null) {
      await this.refunds.attach(topUp.id, topUp.paymentIntentId, em);
      await this.disputes.attach(topUp.id, topUp.paymentIntentId, em);
    }
    let current = topUp;
    const reference = `${topUp.id}:refund:${toStripeCents(topUp.refundedCash)}`;
    current = (await this.syncRefunds(current, reference, em)).topUp;
    for (const dispute of await this.disputes.lockOutstanding(topUp.id, em)) {
      current = (await this.debitDispute(current, dispute, em)).topUp;
    }
    return current;
  }
}
