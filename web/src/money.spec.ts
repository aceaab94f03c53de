import { describe, expect, it } from '@jest/globals';
import {
  checkCredit,
  checkSpendLimit,
  compareDecimal,
  formatUsd,
  maxDecimal,
  permille,
  toScaled,
} from './money.js';

describe('formatUsd', () => {
  it.each([
    ['100', '$100.00'],
    ['100.00', '$100.00'],
    ['99.964938', '$99.964938'],
    ['99.9649380000', '$99.964938'],
    ['0.035062', '$0.035062'],
    ['0.0000000001', '$0.0000000001'],
    ['0', '$0.00'],
    ['-0.00', '$0.00'],
    ['-5.00', '-$5.00'],
    ['-0.0350620000', '-$0.035062'],
    ['1234567.5', '$1,234,567.50'],
    ['12345678901234567890.1234567891', '$12,345,678,901,234,567,890.1234567891'],
    ['0.1', '$0.10'],
    ['007.5', '$7.50'],
  ])('shows %p as %p, every significant digit kept', (input, expected) => {
    expect(formatUsd(input)).toBe(expected);
  });

  it('leaves anything that is not a decimal string as it came', () => {
    expect(formatUsd('n/a')).toBe('n/a');
    expect(formatUsd('1e3')).toBe('1e3');
  });

  // Where a float would be wrong: 0.1 + 0.2, and digits past a double's precision.
  it('never goes through a JS number', () => {
    expect(formatUsd('0.30000000000000004')).toBe('$0.30000000000000004');
    expect(formatUsd('9007199254740993.01')).toBe('$9,007,199,254,740,993.01');
  });
});

describe('exact comparisons', () => {
  it.each([
    ['0.1', '0.10', 0],
    ['0.035062', '0.0350620000', 0],
    ['1.0000000001', '1', 1],
    ['-5', '-4.99', -1],
    ['9007199254740993', '9007199254740992', 1],
  ])('compares %p with %p as %p', (a, b, expected) => {
    expect(compareDecimal(a, b)).toBe(expected);
  });

  it('scales to integers without rounding', () => {
    expect(toScaled('1.23', 4)).toBe(12300n);
    expect(toScaled('-0.035062', 10)).toBe(-350620000n);
  });

  it('finds the largest amount', () => {
    expect(maxDecimal(['0.3', '0.30000000000000004', '0.2'])).toBe('0.30000000000000004');
    expect(maxDecimal([])).toBe('0');
  });

  it('gives bar heights in thousandths of the largest', () => {
    expect(permille('0.5', '1')).toBe(500);
    expect(permille('1', '1')).toBe(1000);
    expect(permille('0', '1')).toBe(0);
    expect(permille('0.0000000001', '1000')).toBe(0);
    expect(permille('1', '0')).toBe(0);
  });
});

describe('checkCredit', () => {
  it.each([
    ['100', '100.00'],
    ['100.5', '100.50'],
    ['$25.00', '25.00'],
    ['10,000', '10000.00'],
    ['1', '1.00'],
    [' 007 ', '7.00'],
  ])('accepts %p as %p', (text, credit) => {
    expect(checkCredit(text)).toEqual({ ok: true, credit });
  });

  it.each(['', 'abc', '0.99', '10000.01', '1.234', '-5', '1e3'])('refuses %p', (text) => {
    expect(checkCredit(text).ok).toBe(false);
  });
});

describe('checkSpendLimit', () => {
  it('reads empty as no limit and keeps every digit typed', () => {
    expect(checkSpendLimit('  ')).toEqual({ ok: true, value: null });
    expect(checkSpendLimit('12.3456')).toEqual({ ok: true, value: '12.3456' });
    expect(checkSpendLimit('$50')).toEqual({ ok: true, value: '50' });
  });

  it.each(['-1', 'ten', '1.2.3'])('refuses %p', (text) => {
    expect(checkSpendLimit(text).ok).toBe(false);
  });
});
