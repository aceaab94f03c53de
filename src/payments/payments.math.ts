import { Decimal } from 'decimal.js';
import { money, MONEY_SCALE, toCentsHalfUp } from '../common/money/money.js';

/**
 * Pure money rules of top-ups and refunds: no I/O, no `number` holding dollars. The only
 * numbers here are Stripe's integer minor units (cents), converted at the edge.
 */

/** Stripe refuses a USD Checkout payment below 50 cents. */
export const STRIPE_MIN_CHARGE = money('0.50');

/**
 * What a top-up of `credit` costs at promotion `rate` (none: full price): credit × rate,
 * rounded HALF-UP to cents, because this amount leaves the system as a card payment.
 */
export function topUpPrice(credit: Decimal, rate: Decimal | null): Decimal {
  return toCentsHalfUp(rate === null ? credit : credit.times(rate));
}

/**
 * Whole cents as the integer Stripe's API takes. `amount` already has at most two decimals,
 * so ×100 is exact; the integer is a count of cents, not money math.
 */
export function toStripeCents(amount: Decimal): number {
  const cents = amount.times(100);
  if (!cents.isInteger() || cents.isNegative())
    throw new Error(`not a whole number of cents: ${amount.toFixed()}`);
  const n = Number.parseInt(cents.toFixed(0), 10);
  if (!Number.isSafeInteger(n)) throw new Error(`amount out of range: ${amount.toFixed()}`);
  return n;
}

/** Stripe's integer cents back to dollars; null when Stripe sent no usable amount. */
export function fromStripeCents(cents: unknown): Decimal | null {
  if (typeof cents !== 'number' || !Number.isSafeInteger(cents) || cents < 0) return null;
  return money(cents.toString()).div(100);
}

/**
 * Credit taken back by a cumulative cash refund: credit × refundedCash ÷ price, rounded
 * HALF-UP at the ledger's scale (10), never more than the credit. A full refund takes back
 * exactly the credit, so no rounding residue is left on the account.
 */
export function refundedCreditFor(credit: Decimal, price: Decimal, refundedCash: Decimal): Decimal {
  if (refundedCash.lte(0)) return money('0');
  if (refundedCash.gte(price)) return credit;
  return credit.times(refundedCash).div(price).toDecimalPlaces(MONEY_SCALE, Decimal.ROUND_HALF_UP);
}

/**
 * Credit a dispute of `disputedCash` holds back: credit × disputedCash ÷ price, rounded HALF-UP
 * at the ledger's scale, the whole credit when the whole price is disputed, and never more
 * than `room` (the credit refunds and earlier disputes left).
 */
export function disputedCreditFor(
  credit: Decimal,
  price: Decimal,
  disputedCash: Decimal,
  room: Decimal,
): Decimal {
  if (disputedCash.lte(0) || room.lte(0)) return money('0');
  const share = disputedCash.gte(price)
    ? credit
    : credit.times(disputedCash).div(price).toDecimalPlaces(MONEY_SCALE, Decimal.ROUND_HALF_UP);
  return share.lt(room) ? share : room;
}

/**
 * Cash the refunds of a payment still take: Stripe's running total minus the refunds it later
 * reported failed or canceled (their money came back to us), never below zero. Assumes
 * Stripe's `amount_refunded` keeps counting a refund after it fails, as the running total of
 * refunds created.
 */
export function effectiveRefundedCash(reportedCash: Decimal, failedCash: Decimal): Decimal {
  const net = reportedCash.minus(failedCash);
  return net.lt(0) ? money('0') : net;
}
