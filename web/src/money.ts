/**
 * Amounts arrive as decimal strings ("99.9649380000", "-5.00"); they are shown and compared
 * as strings and BigInts, never as JS numbers, so no digit is lost or invented.
 */

const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;

export interface ParsedDecimal {
  negative: boolean;
  int: string;
  frac: string;
}

export function parseDecimal(value: string): ParsedDecimal | null {
  const m = DECIMAL.exec(value.trim());
  if (!m) return null;
  const int = m[2].replace(/^0+(?=\d)/, '');
  const frac = m[3] ?? '';
  const zero = /^0*$/.test(int) && /^0*$/.test(frac);
  return { negative: m[1] === '-' && !zero, int, frac };
}

/**
 * "$99.964938", "$100.00", "-$5.00", "$12,345.60": at least two decimals and every
 * significant digit the API sent (trailing zeros past the cents carry no value and go).
 * Anything that is not a decimal string is shown as it came.
 */
export function formatUsd(value: string): string {
  const d = parseDecimal(value);
  if (!d) return value;
  let frac = d.frac.replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  const int = d.int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${d.negative ? '-' : ''}$${int}.${frac}`;
}

/** The value × 10^scale as a BigInt, truncating digits past `scale` (for scaling bars). */
export function toScaled(value: string, scale = 10): bigint {
  const d = parseDecimal(value);
  if (!d) return 0n;
  const frac = d.frac.slice(0, scale).padEnd(scale, '0');
  const n = BigInt(d.int + frac);
  return d.negative ? -n : n;
}

/** -1, 0 or 1, exactly. */
export function compareDecimal(a: string, b: string): number {
  const scale = Math.max(fracLength(a), fracLength(b));
  const x = toScaled(a, scale);
  const y = toScaled(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

const fracLength = (v: string): number => parseDecimal(v)?.frac.length ?? 0;

export const isNegative = (value: string): boolean => parseDecimal(value)?.negative ?? false;
export const isZero = (value: string): boolean => {
  const d = parseDecimal(value);
  return d !== null && /^0*$/.test(d.int + d.frac);
};

/**
 * `value` as a share of `max` in thousandths (0..1000), by integer math on the scaled
 * amounts: a bar's height, not money.
 */
export function permille(value: string, max: string): number {
  const m = toScaled(max);
  if (m <= 0n) return 0;
  const v = toScaled(value);
  if (v <= 0n) return 0;
  const p = (v * 1000n) / m;
  return Number(p > 1000n ? 1000n : p);
}

/** The largest of some amounts ("0" for none). */
export function maxDecimal(values: string[]): string {
  return values.reduce((best, v) => (compareDecimal(v, best) > 0 ? v : best), '0');
}

export type CreditCheck = { ok: true; credit: string } | { ok: false; message: string };

/**
 * A top-up credit as typed: 1.00 to 10000.00 USD with at most cents, normalised to two
 * decimals ("100" → "100.00"). The server checks again.
 */
export function checkCredit(text: string): CreditCheck {
  const t = text.trim().replace(/^\$/, '').replace(/,/g, '');
  const m = /^(\d{1,5})(?:\.(\d{1,2}))?$/.exec(t);
  if (!m) return { ok: false, message: 'Enter an amount in dollars, such as 100 or 25.50.' };
  const credit = `${m[1].replace(/^0+(?=\d)/, '')}.${(m[2] ?? '').padEnd(2, '0')}`;
  const cents = toScaled(credit, 2);
  if (cents < 100n) return { ok: false, message: 'The smallest top-up is $1.00.' };
  if (cents > 1_000_000n) return { ok: false, message: 'The largest top-up is $10,000.00.' };
  return { ok: true, credit };
}

/** An optional spend limit as typed: empty means unlimited (null). */
export function checkSpendLimit(
  text: string,
): { ok: true; value: string | null } | { ok: false; message: string } {
  const t = text.trim().replace(/^\$/, '').replace(/,/g, '');
  if (t === '') return { ok: true, value: null };
  if (!/^\d{1,10}(\.\d{1,10})?$/.test(t))
    return { ok: false, message: 'Enter a dollar amount such as 50 or 12.50, or leave it empty.' };
  return { ok: true, value: t };
}
