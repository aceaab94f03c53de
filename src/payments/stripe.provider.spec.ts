import { describe, expect, it } from '@jest/globals';
import { stripeClientConfig } from './stripe.provider.js';

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
