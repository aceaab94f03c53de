import { describe, expect, it } from '@jest/globals';
import { signatureTimestamp, stripeClientConfig } from './stripe.provider.js';

describe('stripeClientConfig', () => {
  it('talks to Stripe itself when no API base is set', () => {
    const c = stripeClientConfig(null);
    expect(c.host).toBeUndefined();
    expect(c.port).toBeUndefined();
    expect(c.protocol).toBeUndefined();
  });

  it.each([
    ['http://127.0.0.1:12111', { host: '127.0.0.1', port: '12111', protocol: 'http' }],
    ['http://localhost:12111/', { host: 'localhost', port: '12111', protocol: 'http' }],
    [
      'https://stripe-mock.internal',
      { host: 'stripe-mock.internal', port: 443, protocol: 'https' },
    ],
    ['http://stub', { host: 'stub', port: 80, protocol: 'http' }],
  ])('points the SDK at %s', (base, expected) => {
    expect(stripeClientConfig(base)).toMatchObject(expected);
  });
});

describe('signatureTimestamp', () => {
  it.each([
    ['t=1700000000,v1=abc', 1700000000],
    ['v1=abc,t=1700000000', 1700000000],
    // The SDK keeps the last t=, so this does too: a fresh one in front cannot hide a later one.
    ['t=1,t=1700000000,v1=abc', 1700000000],
    ['v1=abc', null],
    ['t=,v1=abc', null],
    ['t=soon,v1=abc', null],
  ])('reads %p as %p', (header, expected) => {
    expect(signatureTimestamp(header)).toBe(expected);
  });
});
