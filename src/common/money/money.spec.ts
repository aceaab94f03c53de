import { describe, expect, it } from '@jest/globals';
import {
  formatAmount,
  formatExact,
  formatRatio,
  isDecimalString,
  money,
  toCentsHalfUp,
} from './money.js';

describe('money', () => {
  it.each([
    ['0.1', '0.2', '0.3'],
    ['0.035062', '0.0070124', '0.0420744'],
    ['99999999999999999999.9999999999', '0.0000000001', '100000000000000000000'],
  ])('adds %s and %s exactly to %s (where floating point would not)', (a, b, sum) => {
    expect(formatExact(money(a).plus(b))).toBe(sum);
  });

  it.each([
    ['100', '100.00'],
    ['95', '95.00'],
    ['-5.5', '-5.50'],
    ['0.0420744', '0.0420744'],
    ['0', '0.00'],
  ])('shows the amount %s as %s without rounding away a digit', (v, shown) => {
    expect(formatAmount(money(v))).toBe(shown);
  });

  it.each([
    ['1', '1.0'],
    ['1.2', '1.2'],
    ['0.85', '0.85'],
  ])('shows the ratio %s as %s', (v, shown) => {
    expect(formatRatio(money(v))).toBe(shown);
  });

  it.each([
    ['84.995', '85.00'],
    ['84.994', '84.99'],
    ['0.005', '0.01'],
    ['17.935', '17.94'],
  ])('rounds %s half-up to cents as %s', (v, cents) => {
    expect(toCentsHalfUp(money(v)).toFixed(2)).toBe(cents);
  });

  it.each([
    ['1.25', true],
    ['-5.00', true],
    ['1e3', false],
    [' 1', false],
    ['1.', false],
    ['.5', false],
    ['NaN', false],
    [12, false],
  ])('judges %p as a decimal string: %p', (v, ok) => {
    expect(isDecimalString(v)).toBe(ok);
  });
});
