import { describe, expect, it } from '@jest/globals';
import { money } from '../common/money/money.js';
import {
  disputedCreditFor,
  effectiveRefundedCash,
  fromStripeCents,
  refundedCreditFor,
  topUpPrice,
  toStripeCents,
} from './payments.math.js';

describe('topUpPrice', () => {
  it.each([
    ['100.00', '0.85', '85.00'],
    ['1.00', '0.85', '0.85'],
    ['10000.00', '0.85', '8500.00'],
    // 2.125 rounds half-up to 2.13; half-even (banker's) rounding would give 2.12.
    ['2.50', '0.85', '2.13'],
    ['33.33', '0.85', '28.33'],
    ['1.10', '0.85', '0.94'],
    ['0.10', '0.15', '0.02'], // 0.015 half-up
    ['100.00', '1', '100.00'],
    ['19.99', '0.3333333333', '6.66'],
  ])('credit %s at rate %s costs %s', (credit, rate, price) => {
    expect(topUpPrice(money(credit), money(rate)).toFixed(2)).toBe(price);
  });

  it('costs the credit itself when no promotion applies', () => {
    expect(topUpPrice(money('42.42'), null).toFixed(2)).toBe('42.42');
  });
});

describe('toStripeCents', () => {
  it.each([
    ['85.00', 8500],
    ['0.5', 50],
    ['8500.00', 850000],
    ['0.29', 29], // 0.29 * 100 is 28.999999999999996 in floating point
    ['1.15', 115], // 114.99999999999999 in floating point
  ])('%s dollars are %d cents', (amount, cents) => {
    expect(toStripeCents(money(amount))).toBe(cents);
  });

  it('refuses fractions of a cent and negative amounts', () => {
    expect(() => toStripeCents(money('1.005'))).toThrow();
    expect(() => toStripeCents(money('-1.00'))).toThrow();
  });
});

describe('fromStripeCents', () => {
  it.each([
    [8500, '85'],
    [4250, '42.5'],
    [1, '0.01'],
    [0, '0'],
  ])('%d cents are %s dollars', (cents, dollars) => {
    expect(fromStripeCents(cents)?.toFixed()).toBe(dollars);
  });

  it.each([[null], [undefined], [-1], [1.5], ['8500'], [Number.MAX_SAFE_INTEGER + 2]])(
    'gives null for %p',
    (v) => {
      expect(fromStripeCents(v)).toBeNull();
    },
  );
});

describe('refundedCreditFor', () => {
  it.each([
    ['100', '85.00', '42.50', '50'],
    ['100', '85.00', '85.00', '100'],
    ['100', '85.00', '0', '0'],
    ['100', '85.00', '10.00', '11.7647058824'], // 11.76470588235294..., half-up at scale 10
    ['100', '85.00', '17.00', '20'],
    ['33.33', '28.33', '28.33', '33.33'], // a full refund takes back exactly the credit
    ['33.33', '28.33', '14.17', '16.6708824568'],
    ['100', '85.00', '90.00', '100'], // never more than the credit
  ])('credit %s priced %s, %s refunded: takes back %s', (credit, price, cash, expected) => {
    expect(refundedCreditFor(money(credit), money(price), money(cash)).toFixed()).toBe(expected);
  });
});

describe('disputedCreditFor', () => {
  it.each([
    // credit, price, disputed cash, room, held back
    ['100', '85.00', '85.00', '100', '100'], // the whole payment disputed: the whole credit
    ['100', '85.00', '42.50', '100', '50'],
    ['100', '85.00', '10.00', '100', '11.7647058824'], // half-up at scale 10
    ['100', '85.00', '85.00', '50', '50'], // never more than refunds left
    ['100', '85.00', '90.00', '100', '100'], // more than was paid: still only the credit
    ['100', '85.00', '42.50', '0', '0'],
    ['100', '85.00', '0', '100', '0'],
    ['33.33', '28.33', '28.33', '33.33', '33.33'],
  ])(
    'credit %s priced %s, %s disputed, %s left: holds back %s',
    (credit, price, cash, room, out) => {
      expect(
        disputedCreditFor(money(credit), money(price), money(cash), money(room)).toFixed(),
      ).toBe(out);
    },
  );
});

describe('effectiveRefundedCash', () => {
  it.each([
    ['85.00', '0', '85'],
    ['85.00', '85.00', '0'],
    ['85.00', '42.50', '42.5'],
    ['42.50', '85.00', '0'], // a failure reported before the refund's running total: never negative
  ])('%s refunded with %s failed leaves %s', (reported, failed, out) => {
    expect(effectiveRefundedCash(money(reported), money(failed)).toFixed()).toBe(out);
  });
});
