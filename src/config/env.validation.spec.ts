import { describe, expect, it } from '@jest/globals';
import { validateEnv } from './env.validation.js';

describe('validateEnv', () => {
  it('accepts an empty environment: everything is optional for a local run', () => {
    expect(() => validateEnv({})).not.toThrow();
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['ADMIN_API_KEY', 'short'],
    ['GATEWAY_API_KEY', 'a-long-enough-key-1,,'],
    ['STRIPE_SECRET_KEY', 'pk_test_123'],
    ['STRIPE_WEBHOOK_SECRET', 'secret'],
    ['LOG_LEVEL', 'loud'],
    ['DB_POOL_SIZE', '0'],
    ['HOLD_TTL_SECONDS', '0'],
    ['SHUTDOWN_GRACE_SECONDS', '-1'],
    ['LOCK_TIMEOUT_MS', 'soon'],
    ['RATE_LIMIT_PER_MINUTE', '0'],
    ['RATE_LIMIT_REDIS_URL', 'http://x'],
    ['METRICS_TOKEN', 'short'],
  ])('stops the start naming %s when it is %p', (name, value) => {
    expect(() => validateEnv({ [name]: value })).toThrow(
      new RegExp(`^Invalid configuration:[\\s\\S]*${name}`),
    );
  });

  it('never echoes a bad key value back in its message', () => {
    let message = '';
    try {
      validateEnv({ ADMIN_API_KEY: 'short secret' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('ADMIN_API_KEY');
    expect(message).not.toContain('short secret');
  });

  it('accepts named admin keys, name:key', () => {
    expect(() =>
      validateEnv({ ADMIN_API_KEY: 'alice:first-admin-key-0001,bob:second-admin-key-002' }),
    ).not.toThrow();
    expect(() => validateEnv({ ADMIN_API_KEY: 'al ice:first-admin-key-0001' })).toThrow(
      /ADMIN_API_KEY/,
    );
  });

  it('accepts comma-separated keys for rotation', () => {
    expect(() =>
      validateEnv({ ADMIN_API_KEY: 'first-admin-key-0001,second-admin-key-002' }),
    ).not.toThrow();
  });
});
