import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIMAL = /^-?\d+(\.\d+)?$/;

/** The contract's error body: `{ error: { code, message, details? } }` and nothing else. */
function expectError(res: Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body)).toEqual(['error']);
  const err = res.body.error as Record<string, unknown>;
  expect(err.code).toBe(code);
  expect(typeof err.message).toBe('string');
  for (const k of Object.keys(err)) expect(['code', 'message', 'details']).toContain(k);
  if (err.details !== undefined) {
    expect(Array.isArray(err.details)).toBe(true);
    for (const d of err.details as unknown[]) {
      expect(d).toEqual({ field: expect.any(String), message: expect.any(String) });
    }
  }
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
}

const fieldsOf = (res: Response): string[] =>
  [...new Set(((res.body.error?.details ?? []) as { field: string }[]).map((d) => d.field))].sort();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('gateway authorize', () => {
  let t: TestApp;
  const admin = (): [string, string] => bearer(t.adminKey);

  const createAccount = async (name: string): Promise<{ id: string; consoleKey: string }> => {
    const res = await t.http
      .post('/v1/admin/accounts')
      .set(...admin())
      .send({ name })
      .expect(201);
    return { id: res.body.id as string, consoleKey: res.body.consoleKey as string };
  };

  const adjust = async (accountId: string, amount: string): Promise<void> => {
    await t.http
      .post(`/v1/admin/accounts/${accountId}/adjustments`)
      .set(...admin())
      .set('Idempotency-Key', randomUUID())
      .send({ amount, reason: 'test' })
      .expect(201);
  };

  /** An account holding `balance` USD. */
  const fundedAccount = async (name: string, balance = '10.00') => {
    const acc = await createAccount(name);
    if (!new Decimal(balance).isZero()) await adjust(acc.id, balance);
    return acc;
  };

  const createToken = async (accountId: string, body: Record<string, unknown> = {}) => {
    const res = await t.http
      .post(`/v1/admin/accounts/${accountId}/tokens`)
      .set(...admin())
      .send({ name: 'gateway test', ...body })
      .expect(201);
    return { id: res.body.id as string, key: res.body.key as string };
  };

  const authorize = (body: Record<string, unknown>, key: string = t.gatewayKey) =>
    t.http
      .post('/v1/gateway/authorize')
      .set(...bearer(key))
      .send(body);

  /** Asks about `key` and `model` and returns the 200 body. */
  const decide = async (key: string, model = 'gpt-image-2'): Promise<Record<string, unknown>> => {
    const res = await authorize({ key, model }).expect(200);
    return res.body as Record<string, unknown>;
  };

  const expectDenied = async (
    key: string,
    reason: string,
    model = 'gpt-image-2',
  ): Promise<void> => {
    expect(await decide(key, model)).toEqual({ allowed: false, reason });
  };

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('allowed', () => {
    it('allows an active token of a funded account and says whose it is, with group, ratio and balance', async () => {
      const acc = await fundedAccount('Allowed');
      const token = await createToken(acc.id);
      const body = await decide(token.key);
      expect(body).toEqual({
        allowed: true,
        tokenId: token.id,
        accountId: acc.id,
        group: 'default',
        ratio: expect.stringMatching(DECIMAL),
        balance: expect.stringMatching(DECIMAL),
      });
      expect(body.tokenId).toMatch(UUID);
      expect(new Decimal(body.ratio as string).eq(1)).toBe(true);
      expect(new Decimal(body.balance as string).eq(10)).toBe(true);
    });

    it('reports ratio 1.2 for a token in the image2Enterprise group', async () => {
      const acc = await fundedAccount('Enterprise');
      const token = await createToken(acc.id, { group: 'image2Enterprise' });
      expect(await decide(token.key)).toMatchObject({
        allowed: true,
        tokenId: token.id,
        accountId: acc.id,
        group: 'image2Enterprise',
        ratio: '1.2',
      });
    });

    it('reports the ratio a group has now, after an admin changes it', async () => {
      await t.http
        .post('/v1/admin/groups')
        .set(...admin())
        .send({ name: 'ratioShift', ratio: '1.5' })
        .expect(201);
      const acc = await fundedAccount('Ratio shift');
      const token = await createToken(acc.id, { group: 'ratioShift' });
      expect(await decide(token.key)).toMatchObject({
        allowed: true,
        group: 'ratioShift',
        ratio: '1.5',
      });
      await t.http
        .patch('/v1/admin/groups/ratioShift')
        .set(...admin())
        .send({ ratio: '0.75' })
        .expect(200);
      expect(await decide(token.key)).toMatchObject({
        allowed: true,
        group: 'ratioShift',
        ratio: '0.75',
      });
    });

    it('reports the balance as it stands after every adjustment', async () => {
      const acc = await fundedAccount('Moving balance', '10.00');
      const token = await createToken(acc.id);
      await adjust(acc.id, '-2.50');
      const body = await decide(token.key);
      expect(body.allowed).toBe(true);
      expect(new Decimal(body.balance as string).eq('7.5')).toBe(true);
    });

    it('allows every priced model when allowedModels is null', async () => {
      const acc = await fundedAccount('All models');
      const token = await createToken(acc.id);
      for (const model of ['gpt-image-2', 'gpt-image-2-all', 'gpt-image-2-vip']) {
        expect((await decide(token.key, model)).allowed).toBe(true);
      }
    });

    it('allows a token below its spend limit', async () => {
      const acc = await fundedAccount('Under limit');
      const token = await createToken(acc.id, { spendLimit: '5.00' });
      expect((await decide(token.key)).allowed).toBe(true);
    });
  });

  describe('denied', () => {
    it('denies a key nobody issued as invalid_key', async () => {
      await expectDenied(`sk-${randomBytes(32).toString('base64url')}`, 'invalid_key');
    });

    it('denies a console key sent as a token as invalid_key', async () => {
      const acc = await fundedAccount('Console key as token');
      await expectDenied(acc.consoleKey, 'invalid_key');
    });

    it('denies a revoked token as revoked', async () => {
      const acc = await createAccount('Revoked');
      await adjust(acc.id, '10.00');
      const token = await createToken(acc.id);
      expect((await decide(token.key)).allowed).toBe(true);
      await t.http
        .delete(`/v1/me/tokens/${token.id}`)
        .set(...bearer(acc.consoleKey))
        .expect(200);
      await expectDenied(token.key, 'revoked');
    });

    it('denies a token once its expiry has passed as expired', async () => {
      const acc = await fundedAccount('Expiring');
      const token = await createToken(acc.id, {
        expiresAt: new Date(Date.now() + 2_000).toISOString(),
      });
      expect((await decide(token.key)).allowed).toBe(true);
      await sleep(2_500);
      await expectDenied(token.key, 'expired');
    });

    it('denies a token of a suspended account as account_suspended, and allows it again once reactivated', async () => {
      const acc = await fundedAccount('Suspended');
      const token = await createToken(acc.id);
      await t.http
        .patch(`/v1/admin/accounts/${acc.id}`)
        .set(...admin())
        .send({ status: 'suspended' })
        .expect(200);
      await expectDenied(token.key, 'account_suspended');
      await t.http
        .patch(`/v1/admin/accounts/${acc.id}`)
        .set(...admin())
        .send({ status: 'active' })
        .expect(200);
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('denies a token of an account with no balance as insufficient_balance', async () => {
      const acc = await createAccount('Empty');
      const token = await createToken(acc.id);
      await expectDenied(token.key, 'insufficient_balance');
    });

    it('denies a token once the balance is exactly zero again, and while it is negative', async () => {
      const acc = await fundedAccount('Drained', '1.00');
      const token = await createToken(acc.id);
      expect((await decide(token.key)).allowed).toBe(true);
      await adjust(acc.id, '-1.00');
      await expectDenied(token.key, 'insufficient_balance');
      await adjust(acc.id, '-1.00');
      const stored = await t.sql.query<{ balance: string }>(
        `SELECT balance::text FROM accounts WHERE id = $1`,
        [acc.id],
      );
      expect(new Decimal(stored.rows[0].balance).eq(-1)).toBe(true);
      await expectDenied(token.key, 'insufficient_balance');
      await adjust(acc.id, '1.01');
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('allows a balance of a single hundredth of a cent', async () => {
      const acc = await fundedAccount('Tiny', '0.0001');
      const token = await createToken(acc.id);
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('denies a model outside the token allowedModels as model_not_allowed', async () => {
      const acc = await fundedAccount('Allowed models');
      const token = await createToken(acc.id, { allowedModels: ['gpt-image-2'] });
      await expectDenied(token.key, 'model_not_allowed', 'gpt-image-2-all');
      expect((await decide(token.key, 'gpt-image-2')).allowed).toBe(true);
    });

    it('denies a model without a price as model_not_priced', async () => {
      const acc = await fundedAccount('Unpriced');
      const token = await createToken(acc.id);
      await expectDenied(token.key, 'model_not_priced', 'unknown-model');
    });

    it('denies a model whose only price starts in the future as model_not_priced', async () => {
      const acc = await fundedAccount('Future price');
      const token = await createToken(acc.id);
      const effectiveFrom = new Date(Date.now() + 24 * 3600_000).toISOString();
      await t.http
        .put('/v1/admin/models/coming-soon')
        .set(...admin())
        .send({ mode: 'per_image', perImage: '0.02', effectiveFrom })
        .expect((res) => expect([200, 201]).toContain(res.status));
      await expectDenied(token.key, 'model_not_priced', 'coming-soon');
    });

    it('denies a token with spend limit 0 as spend_limit_reached, since spent 0 has reached it', async () => {
      const acc = await fundedAccount('Zero limit');
      const token = await createToken(acc.id, { spendLimit: '0' });
      await expectDenied(token.key, 'spend_limit_reached');
    });

    it('allows the token again when its spend limit is lifted', async () => {
      const acc = await fundedAccount('Lifted limit');
      const token = await createToken(acc.id, { spendLimit: '0' });
      await expectDenied(token.key, 'spend_limit_reached');
      await t.http
        .patch(`/v1/me/tokens/${token.id}`)
        .set(...bearer(acc.consoleKey))
        .send({ spendLimit: null })
        .expect(200);
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('gives nothing away about the token or account when it denies', async () => {
      const acc = await createAccount('Quiet denial');
      const token = await createToken(acc.id);
      const body = await decide(token.key);
      expect(Object.keys(body).sort()).toEqual(['allowed', 'reason']);
      expect(JSON.stringify(body)).not.toContain(acc.id);
      expect(JSON.stringify(body)).not.toContain(token.id);
    });
  });

  describe('bad requests and roles', () => {
    it.each<[string, Record<string, unknown>, string[]]>([
      ['no key', { model: 'gpt-image-2' }, ['key']],
      ['no model', { key: 'sk-abc' }, ['model']],
      ['neither key nor model', {}, ['key', 'model']],
      ['a key that is not a string', { key: 123, model: 'gpt-image-2' }, ['key']],
      ['an empty model', { key: 'sk-abc', model: '' }, ['model']],
    ])('refuses a request with %s with 400 naming the fields', async (_what, body, fields) => {
      const res = await authorize(body);
      expectError(res, 400, 'validation_failed');
      expect(fieldsOf(res)).toEqual(fields);
    });

    it('refuses the admin key with 403', async () => {
      const acc = await fundedAccount('Admin asks');
      const token = await createToken(acc.id);
      expectError(
        await authorize({ key: token.key, model: 'gpt-image-2' }, t.adminKey),
        403,
        'forbidden',
      );
    });

    it('refuses a customer console key with 403', async () => {
      const acc = await fundedAccount('Customer asks');
      const token = await createToken(acc.id);
      expectError(
        await authorize({ key: token.key, model: 'gpt-image-2' }, acc.consoleKey),
        403,
        'forbidden',
      );
    });

    it('refuses an sk- token used as the bearer key with 401', async () => {
      const acc = await fundedAccount('Token asks');
      const token = await createToken(acc.id);
      expectError(
        await authorize({ key: token.key, model: 'gpt-image-2' }, token.key),
        401,
        'unauthorized',
      );
    });

    it('refuses a request without a key with 401', async () => {
      const res = await t.http
        .post('/v1/gateway/authorize')
        .send({ key: 'sk-abc', model: 'gpt-image-2' });
      expectError(res, 401, 'unauthorized');
    });
  });
});
