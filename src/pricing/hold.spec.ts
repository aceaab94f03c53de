import { describe, expect, it } from '@jest/globals';
import { money } from '../common/money/money.js';
import { HoldPrice, holdAmountFor } from './hold.js';

const tokens: HoldPrice = {
  mode: 'tokens',
  perRequest: null,
  perImage: null,
  holdAmount: money('0.25'),
  referencePrices: [
    { size: '1024x1024', quality: 'high', price: money('0.211') },
    { size: '1024x1536', quality: 'low', price: money('0.005') },
  ],
};
const perRequest: HoldPrice = {
  ...tokens,
  mode: 'per_request',
  perRequest: money('0.03'),
  holdAmount: null,
};
const perImage: HoldPrice = {
  ...tokens,
  mode: 'per_image',
  perImage: money('0.03'),
  holdAmount: null,
};

describe(holdAmountFor.name, () => {
  it.each([
    ['per_request ignores n', perRequest, { n: 4 }, '1', '0.03'],
    ['per_request times the 1.2 ratio', perRequest, { n: 1 }, '1.2', '0.036'],
    ['per_image times n', perImage, { n: 3 }, '1', '0.09'],
    ['per_image times n and ratio', perImage, { n: 3 }, '1.2', '0.108'],
    [
      'tokens at the reference price of size and quality',
      tokens,
      { n: 2, size: '1024x1024', quality: 'high' },
      '1',
      '0.422',
    ],
    ['tokens at the holdAmount without a size', tokens, { n: 2 }, '1', '0.5'],
    [
      'tokens at the holdAmount for an unpriced size',
      tokens,
      { n: 1, size: '4096x4096', quality: 'high' },
      '1.2',
      '0.3',
    ],
    [
      'tokens where 0.1 + 0.2 would drift in floating point',
      { ...tokens, holdAmount: money('0.1') },
      { n: 3 },
      '1',
      '0.3',
    ],
  ])('%s', (_name, price, req, ratio, expected) => {
    expect(holdAmountFor(price, req, money(ratio)).toFixed()).toBe(expected);
  });

  it('rounds a ratio that gives more than ten decimals up, never short of the price', () => {
    const h = holdAmountFor(perRequest, { n: 1 }, money('1.00000000001'));
    expect(h.toFixed()).toBe('0.0300000001');
  });

  it('refuses n below 1 and negative ratios', () => {
    expect(() => holdAmountFor(perImage, { n: 0 }, money('1'))).toThrow(RangeError);
    expect(() => holdAmountFor(perImage, { n: 1 }, money('-1'))).toThrow(RangeError);
  });
});
