import { describe, expect, it } from '@jest/globals';
import { loadConfig, parseAdminKeys } from './app.config.js';

describe(loadConfig.name, () => {
  it('has every default in one place for a local run', () => {
    const c = loadConfig({});
    expect(c.production).toBe(false);
    expect(c.app).toEqual({
      port: 3000,
      publicBaseUrl: 'http://localhost:3000',
      logLevel: 'info',
      shutdownGraceSeconds: 25,
      requestTimeoutMs: 30_000,
    });
    expect(c.spend).toEqual({ holdTtlSeconds: 900, holdSweepSeconds: 30 });
    expect(c.limits).toEqual({
      perCustomerPerMinute: 600,
      unauthenticatedPerMinute: 60,
      redisUrl: null,
    });
    expect(c.database).toMatchObject({ url: '', lockTimeoutMs: 5000 });
  });

  it.each([
    [{}, ['DATABASE_URL', 'ADMIN_API_KEY', 'GATEWAY_API_KEY']],
    [{ DATABASE_URL: 'postgres://h/db', GATEWAY_API_KEY: 'g'.repeat(20) }, ['ADMIN_API_KEY']],
  ])(
    'refuses production without the database and both keys, naming each missing one',
    (env, missing) => {
      let message = '';
      try {
        loadConfig({ NODE_ENV: 'production', ...env });
      } catch (err) {
        message = (err as Error).message;
      }
      for (const name of ['DATABASE_URL', 'ADMIN_API_KEY', 'GATEWAY_API_KEY']) {
        if (missing.includes(name))
          expect(message).toContain(`${name}: required when NODE_ENV=production`);
        else expect(message).not.toContain(`${name}:`);
      }
    },
  );

  it('starts in production with all three given', () => {
    const c = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://h/db',
      ADMIN_API_KEY: 'a'.repeat(20),
      GATEWAY_API_KEY: 'g'.repeat(20),
    });
    expect(c.production).toBe(true);
  });
});

describe(parseAdminKeys.name, () => {
  it('names keys given as name:key and calls a plain key admin', () => {
    expect(parseAdminKeys('alice:aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb')).toEqual([
      { name: 'alice', key: 'aaaaaaaaaaaaaaaa' },
      { name: 'admin', key: 'bbbbbbbbbbbbbbbb' },
    ]);
  });
});
