import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes } from 'node:crypto';
import {
  adminHeaders,
  Body,
  createAccount,
  createToken,
  credit,
  errorFields,
  expectErrorBody,
  fundedAccount,
  UUID,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const DECIMAL = /^-?\d+(\.\d+)?$/;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('gateway authorize', () => {
  let t: TestApp;
  /** A token as this suite names them. */
  const gatewayToken = (accountId: string, body: Body = {}) =>
    createToken(t, accountId, { name: 'gateway test', ...body });

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
      const acc = await fundedAccount(t, 'Allowed');
      const token = await gatewayToken(acc.id);
      const body = await decide(token.key);
      expect(body).toEqual({
        allowed: true,
        tokenId: token.id,
        accountId: acc.id,
        group: 'default',
        ratio: expect.stringMatching(DECIMAL),
        balance: expect.stringMatching(DECIMAL),
        available: expect.stringMatching(DECIMAL),
        hold: null,
      });
      expect(body.tokenId).toMatch(UUID);
      expect(new Decimal(body.ratio as string).eq(1)).toBe(true);
      expect(new Decimal(body.balance as string).eq(10)).toBe(true);
    });

    it('reports ratio 1.2 for a token in the image2Enterprise group', async () => {
      const acc = await fundedAccount(t, 'Enterprise');
      const token = await gatewayToken(acc.id, { group: 'image2Enterprise' });
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
        .set(...adminHeaders(t))
        .send({ name: 'ratioShift', ratio: '1.5' })
        .expect(201);
      const acc = await fundedAccount(t, 'Ratio shift');
      const token = await gatewayToken(acc.id, { group: 'ratioShift' });
      expect(await decide(token.key)).toMatchObject({
        allowed: true,
        group: 'ratioShift',
        ratio: '1.5',
      });
      await t.http
        .patch('/v1/admin/groups/ratioShift')
        .set(...adminHeaders(t))
        .send({ ratio: '0.75' })
        .expect(200);
      expect(await decide(token.key)).toMatchObject({
        allowed: true,
        group: 'ratioShift',
        ratio: '0.75',
      });
    });

    it('reports the balance as it stands after every adjustment', async () => {
      const acc = await fundedAccount(t, 'Moving balance', '10.00');
      const token = await gatewayToken(acc.id);
      await credit(t, acc.id, '-2.50');
      const body = await decide(token.key);
      expect(body.allowed).toBe(true);
      expect(new Decimal(body.balance as string).eq('7.5')).toBe(true);
    });

    it('allows every priced model when allowedModels is null', async () => {
      const acc = await fundedAccount(t, 'All models');
      const token = await gatewayToken(acc.id);
      for (const model of ['gpt-image-2', 'gpt-image-2-all', 'gpt-image-2-vip']) {
        expect((await decide(token.key, model)).allowed).toBe(true);
      }
    });

    it('allows a token below its spend limit', async () => {
      const acc = await fundedAccount(t, 'Under limit');
      const token = await gatewayToken(acc.id, { spendLimit: '5.00' });
      expect((await decide(token.key)).allowed).toBe(true);
    });
  });

  describe('denied', () => {
    it('denies a key nobody issued as invalid_key', async () => {
      await expectDenied(`sk-${randomBytes(32).toString('base64url')}`, 'invalid_key');
    });

    it('denies a console key sent as a token as invalid_key', async () => {
      const acc = await fundedAccount(t, 'Console key as token');
      await expectDenied(acc.consoleKey, 'invalid_key');
    });

    it('denies a revoked token as revoked', async () => {
      const acc = await createAccount(t, 'Revoked');
      await credit(t, acc.id, '10.00');
      const token = await gatewayToken(acc.id);
      expect((await decide(token.key)).allowed).toBe(true);
      await t.http
        .delete(`/v1/me/tokens/${token.id}`)
        .set(...bearer(acc.consoleKey))
        .expect(200);
      await expectDenied(token.key, 'revoked');
    });

    it('denies a token once its expiry has passed as expired', async () => {
      const acc = await fundedAccount(t, 'Expiring');
      const token = await gatewayToken(acc.id, {
        expiresAt: new Date(Date.now() + 2_000).toISOString(),
      });
      expect((await decide(token.key)).allowed).toBe(true);
      await sleep(2_500);
      await expectDenied(token.key, 'expired');
    });

    it('denies a token of a suspended account as account_suspended, and allows it again once reactivated', async () => {
      const acc = await fundedAccount(t, 'Suspended');
      const token = await gatewayToken(acc.id);
      await t.http
        .patch(`/v1/admin/accounts/${acc.id}`)
        .set(...adminHeaders(t))
        .send({ status: 'suspended' })
        .expect(200);
      await expectDenied(token.key, 'account_suspended');
      await t.http
        .patch(`/v1/admin/accounts/${acc.id}`)
        .set(...adminHeaders(t))
        .send({ status: 'active' })
        .expect(200);
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('denies a token of an account with no balance as insufficient_balance', async () => {
      const acc = await createAccount(t, 'Empty');
      const token = await gatewayToken(acc.id);
      await expectDenied(token.key, 'insufficient_balance');
    });

    it('denies a token once the balance is exactly zero again, and while it is negative', async () => {
      const acc = await fundedAccount(t, 'Drained', '1.00');
      const token = await gatewayToken(acc.id);
      expect((await decide(token.key)).allowed).toBe(true);
      await credit(t, acc.id, '-1.00');
      await expectDenied(token.key, 'insufficient_balance');
      await credit(t, acc.id, '-1.00');
      const stored = await t.sql.query<{ balance: string }>(
        `SELECT balance::text FROM accounts WHERE id = $1`,
        [acc.id],
      );
      expect(new Decimal(stored.rows[0].balance).eq(-1)).toBe(true);
      await expectDenied(token.key, 'insufficient_balance');
      await credit(t, acc.id, '1.01');
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('allows a balance of a single hundredth of a cent', async () => {
      const acc = await fundedAccount(t, 'Tiny', '0.0001');
      const token = await gatewayToken(acc.id);
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('denies a model outside the token allowedModels as model_not_allowed', async () => {
      const acc = await fundedAccount(t, 'Allowed models');
      const token = await gatewayToken(acc.id, { allowedModels: ['gpt-image-2'] });
      await expectDenied(token.key, 'model_not_allowed', 'gpt-image-2-all');
      expect((await decide(token.key, 'gpt-image-2')).allowed).toBe(true);
    });

    it('denies a model without a price as model_not_priced', async () => {
      const acc = await fundedAccount(t, 'Unpriced');
      const token = await gatewayToken(acc.id);
      await expectDenied(token.key, 'model_not_priced', 'unknown-model');
    });

    it('denies a model whose only price starts in the future as model_not_priced', async () => {
      const acc = await fundedAccount(t, 'Future price');
      const token = await gatewayToken(acc.id);
      const effectiveFrom = new Date(Date.now() + 24 * 3600_000).toISOString();
      await t.http
        .put('/v1/admin/models/coming-soon')
        .set(...adminHeaders(t))
        .send({ mode: 'per_image', perImage: '0.02', effectiveFrom })
        .expect((res) => expect([200, 201]).toContain(res.status));
      await expectDenied(token.key, 'model_not_priced', 'coming-soon');
    });

    it('denies a token with spend limit 0 as spend_limit_reached, since spent 0 has reached it', async () => {
      const acc = await fundedAccount(t, 'Zero limit');
      const token = await gatewayToken(acc.id, { spendLimit: '0' });
      await expectDenied(token.key, 'spend_limit_reached');
    });

    it('allows the token again when its customer lifts a spend limit of its own', async () => {
      const acc = await fundedAccount(t, 'Lifted limit');
      const token = (
        await t.http
          .post('/v1/me/tokens')
          .set(...bearer(acc.consoleKey))
          .send({ name: 'own limit', spendLimit: '0' })
          .expect(201)
      ).body as { id: string; key: string };
      await expectDenied(token.key, 'spend_limit_reached');
      await t.http
        .patch(`/v1/me/tokens/${token.id}`)
        .set(...bearer(acc.consoleKey))
        .send({ spendLimit: null })
        .expect(200);
      expect((await decide(token.key)).allowed).toBe(true);
    });

    it('gives nothing away about the token or account when it denies', async () => {
      const acc = await createAccount(t, 'Quiet denial');
      const token = await gatewayToken(acc.id);
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
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(fields);
    });

    it('refuses the admin key with 403', async () => {
      const acc = await fundedAccount(t, 'Admin asks');
      const token = await gatewayToken(acc.id);
      expectErrorBody(
        await authorize({ key: token.key, model: 'gpt-image-2' }, t.adminKey),
        403,
        'forbidden',
      );
    });

    it('refuses a customer console key with 403', async () => {
      const acc = await fundedAccount(t, 'Customer asks');
      const token = await gatewayToken(acc.id);
      expectErrorBody(
        await authorize({ key: token.key, model: 'gpt-image-2' }, acc.consoleKey),
        403,
        'forbidden',
      );
    });

    it('refuses an sk- token used as the bearer key with 401', async () => {
      const acc = await fundedAccount(t, 'Token asks');
      const token = await gatewayToken(acc.id);
      expectErrorBody(
        await authorize({ key: token.key, model: 'gpt-image-2' }, token.key),
        401,
        'unauthorized',
      );
    });

    it('refuses a request without a key with 401', async () => {
      const res = await t.http
        .post('/v1/gateway/authorize')
        .send({ key: 'sk-abc', model: 'gpt-image-2' });
      expectErrorBody(res, 401, 'unauthorized');
    });
  });
});
