import { Decimal } from 'decimal.js';

/**
 * One Decimal constructor for all money math. 60 significant digits is far above anything a
 * NUMERIC(38,10) column holds, so no intermediate result is ever rounded by the library.
 */
export const Money = Decimal.clone({
  precision: 60,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -100,
  toExpPos: 100,
});
export type Money = Decimal;

/** Scale every stored charge and balance keeps (NUMERIC(38,10)). */
export const MONEY_SCALE = 10;

/** Strict decimal string: optional sign, digits, optional fraction. No exponent, no spaces. */
export const DECIMAL_PATTERN = /^-?\d+(\.\d+)?$/;

export function isDecimalString(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 40 && DECIMAL_PATTERN.test(value);
}

/** Parses a value read from the database (pg returns NUMERIC as string) or a validated DTO field. */
export function money(value: string | Decimal): Decimal {
  return new Money(value);
}

export const ZERO = new Money(0);

/**
 * Account-level amounts (balances, ledger amounts, credits): every digit the ledger holds,
 * padded to at least cents so "100" reads "100.00". Never rounds.
 */
export function formatAmount(value: Decimal): string {
  return value.toFixed(Math.max(2, value.decimalPlaces()));
}

/** Per-event charges and prices: every digit, nothing padded ("0.035062", "0.03", "0"). */
export function formatExact(value: Decimal): string {
  return value.toFixed();
}

/** Ratios and rates: at least one decimal ("1.0", "1.2", "0.85"). */
export function formatRatio(value: Decimal): string {
  return value.toFixed(Math.max(1, value.decimalPlaces()));
}

/** Rounds to cents, half-up: only where money leaves the system (top-up prices). */
export function toCentsHalfUp(value: Decimal): Decimal {
  return value.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
}
