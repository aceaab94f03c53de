import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  adminHeaders,
  Body,
  createToken,
  fundedAccount,
  gatewayHeaders,
  Json,
} from './helpers/api.js';
import { watchNamedStatements, type StatementWatch } from './helpers/statements.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const rid = (tag: string): string => `${tag}-${randomUUID()}`;

/**
 * authorize in one round trip: from a key's second authorize on, the hold goes with the facts
 * query (authorize_facts places it), computed from the price version and ratio the key's last
 * authorize saw. These prove that the hint is never trusted: a new price, a new ratio, a
 * revoked key or a limit reached since are all answered as the two-statement path would.
 */
describe('authorize in one round trip', () => {
  let t: TestApp;
  let watch: StatementWatch;

  const authorize = async (body: Body): Promise<Json> =>
    (
      await t.http
        .post('/v1/gateway/authorize')
        .set(...gatewayHeaders(t))
        .send(body)
        .expect(200)
    ).body;
  const take = (): string[] => watch.take();
  const holdRow = async (requestId: string): Promise<{ status: string; amount: string } | null> =>
    (
      await t.sql.query<{ status: string; amount: string }>(
        `SELECT status, amount::text AS amount FROM holds WHERE request_id = $1`,
        [requestId],
      )
    ).rows[0] ?? null;
  /** What the token and its account hold now. */
  const heldOf = async (tokenId: string): Promise<{ account: string; token: string }> =>
    (
      await t.sql.query<{ account: string; token: string }>(
        `SELECT a.held::text AS account, t.held::text AS token
         FROM api_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.id = $1`,
        [tokenId],
      )
    ).rows[0];
  const putPrice = (model: string, body: Body) =>
    t.http
      .put(`/v1/admin/models/${model}`)
      .set(...adminHeaders(t))
      .send(body);

  beforeAll(async () => {
    t = await createTestApp();
    watch = watchNamedStatements(['tokens_authorize_facts', 'holds_place']);
  });
  afterEach(() => {
    take();
  });
  afterAll(async () => {
    watch.restore();
    await t.close();
  });

  it('places the second hold of a key with its facts, in one statement, at the same amount', async () => {
    const acc = await fundedAccount(t, 'One trip');
    const token = await createToken(t, acc.id);
    const first = rid('first');
    const a = await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: first });
    expect(a).toMatchObject({ allowed: true, hold: { requestId: first, amount: '0.03' } });
    expect(take()).toEqual(['tokens_authorize_facts', 'holds_place']);

    const second = rid('second');
    const b = await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: second });
    expect(b).toMatchObject({
      allowed: true,
      tokenId: token.id,
      accountId: acc.id,
      hold: { requestId: second, amount: '0.03' },
    });
    expect(take()).toEqual(['tokens_authorize_facts']);
    expect(new Decimal(b.balance as string).eq(10)).toBe(true);
    expect(new Decimal(b.available as string).eq('9.94')).toBe(true);
    expect(await holdRow(second)).toEqual({ status: 'active', amount: '0.0300000000' });

    // A replay answers the same hold and places nothing more.
    const again = await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: second });
    expect(again.hold).toEqual(b.hold);
    expect(new Decimal(again.available as string).eq('9.94')).toBe(true);
    const held = await t.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM holds WHERE account_id = $1 AND status = 'active'`,
      [acc.id],
    );
    expect(held.rows[0].n).toBe(2);
  });

  it('holds the new price once a new version is in force, not the one the key last saw', async () => {
    const model = `one-trip-${randomUUID().slice(0, 8)}`;
    expect([200, 201]).toContain(
      (await putPrice(model, { mode: 'per_request', perRequest: '0.05' })).status,
    );
    const acc = await fundedAccount(t, 'Price change');
    const token = await createToken(t, acc.id);
    const before = await authorize({ key: token.key, model, requestId: rid('p1') });
    expect(before.hold).toMatchObject({ amount: '0.05' });
    expect(take()).toEqual(['tokens_authorize_facts', 'holds_place']);

    expect([200, 201]).toContain(
      (await putPrice(model, { mode: 'per_request', perRequest: '0.07' })).status,
    );
    const after = rid('p2');
    const res = await authorize({ key: token.key, model, requestId: after });
    expect(res.hold).toMatchObject({ requestId: after, amount: '0.07' });
    expect(await holdRow(after)).toEqual({ status: 'active', amount: '0.0700000000' });
    // The hint was refused in the facts statement; the hold was then placed at the new price.
    expect(take()).toEqual(['tokens_authorize_facts', 'holds_place']);
  });

  it('holds at the new ratio once the group changes it', async () => {
    const group = `onetrip${randomUUID().slice(0, 8)}`;
    await t.http
      .post('/v1/admin/groups')
      .set(...adminHeaders(t))
      .send({ name: group, ratio: '1.5', description: 'one trip', selectable: false })
      .expect(201);
    const acc = await fundedAccount(t, 'Ratio change');
    const token = await createToken(t, acc.id, { group });
    const before = await authorize({
      key: token.key,
      model: 'gpt-image-2-all',
      requestId: rid('r1'),
    });
    expect(before).toMatchObject({ ratio: '1.5', hold: { amount: '0.045' } });

    await t.http
      .patch(`/v1/admin/groups/${group}`)
      .set(...adminHeaders(t))
      .send({ ratio: '2' })
      .expect(200);
    const after = rid('r2');
    const res = await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: after });
    expect(new Decimal(res.ratio as string).eq(2)).toBe(true);
    expect(res.hold).toMatchObject({ requestId: after, amount: '0.06' });
    expect(await holdRow(after)).toEqual({ status: 'active', amount: '0.0600000000' });
  });

  it('refuses a key revoked since its last authorize, and holds nothing', async () => {
    const acc = await fundedAccount(t, 'Revoked since');
    const token = await createToken(t, acc.id);
    await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: rid('v1') });
    await t.http
      .delete(`/v1/me/tokens/${token.id}`)
      .set(...bearer(acc.consoleKey))
      .expect(200);
    const after = rid('v2');
    expect(await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: after })).toEqual(
      { allowed: false, reason: 'revoked' },
    );
    expect(await holdRow(after)).toBeNull();
  });

  it('refuses a model no longer allowed, and holds nothing', async () => {
    const acc = await fundedAccount(t, 'Models since');
    const token = await createToken(t, acc.id);
    await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: rid('m1') });
    await t.http
      .patch(`/v1/me/tokens/${token.id}`)
      .set(...bearer(acc.consoleKey))
      .send({ allowedModels: ['gpt-image-2-vip'] })
      .expect(200);
    const after = rid('m2');
    expect(await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: after })).toEqual(
      { allowed: false, reason: 'model_not_allowed' },
    );
    expect(await holdRow(after)).toBeNull();
  });

  it('refuses, in the one statement, a hold past the spend limit or the balance', async () => {
    const acc = await fundedAccount(t, 'Limits', '0.10');
    const token = await createToken(t, acc.id, { spendLimit: '0.05' });
    await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: rid('s1') });
    take();
    // 0.03 held of 0.05: under the limit, but another 0.03 would pass it.
    const past = rid('s2');
    expect(await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: past })).toEqual({
      allowed: false,
      reason: 'spend_limit_reached',
    });
    expect(take()).toEqual(['tokens_authorize_facts']);
    expect(await holdRow(past)).toBeNull();
    // The account's held grew before the token refused; it was undone: one hold of 0.03 each.
    expect(await heldOf(token.id)).toEqual({ account: '0.0300000000', token: '0.0300000000' });

    const poor = await fundedAccount(t, 'Balance', '0.04');
    const poorToken = await createToken(t, poor.id);
    const key = poorToken.key;
    await authorize({ key, model: 'gpt-image-2-all', requestId: rid('b1') });
    take();
    // 0.01 left: positive, so the request is considered, but 0.03 does not fit.
    const short = rid('b2');
    expect(await authorize({ key, model: 'gpt-image-2-all', requestId: short })).toEqual({
      allowed: false,
      reason: 'insufficient_balance',
    });
    expect(take()).toEqual(['tokens_authorize_facts']);
    expect(await holdRow(short)).toBeNull();
    expect(await heldOf(poorToken.id)).toEqual({ account: '0.0300000000', token: '0.0300000000' });
  });

  it('answers request_settled for a request already booked, from the same statement', async () => {
    const acc = await fundedAccount(t, 'Booked');
    const token = await createToken(t, acc.id);
    await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: rid('k1') });
    const booked = rid('k2');
    await t.http
      .post('/v1/usage-events')
      .set(...gatewayHeaders(t))
      .send({
        requestId: booked,
        tokenId: token.id,
        model: 'gpt-image-2-all',
        statusCode: 200,
      })
      .expect(201);
    take();
    expect(
      await authorize({ key: token.key, model: 'gpt-image-2-all', requestId: booked }),
    ).toEqual({ allowed: false, reason: 'request_settled' });
    expect(take()).toEqual(['tokens_authorize_facts']);
    expect(await holdRow(booked)).toBeNull();
  });

  // Group commit (AuthorizeQueue): authorizes that arrive while earlier ones are answered share
  // one statement and one commit, taking their accounts' row locks in account order. Two
  // accounts with two keys each, asked at once in an interleaved order while one account's row
  // is locked for a moment (so that the queue backs up and groups form whatever the pace of
  // this test's client): every hold that fits is placed, none beyond, no deadlock, and fewer
  // statements ran than authorizes were answered.
  it('answers authorizes that arrive together in shared statements, exactly as one at a time would', async () => {
    const groupSize = async (): Promise<{ count: number; sum: number }> => {
      const text = (
        await t.http
          .get('/metrics')
          .set(...adminHeaders(t))
          .expect(200)
      ).text;
      const read = (name: string): number =>
        Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN');
      return {
        count: read('billing_authorize_group_size_count'),
        sum: read('billing_authorize_group_size_sum'),
      };
    };
    // 0.30 each: ten holds of 0.03.
    const accounts = await Promise.all([
      fundedAccount(t, 'Group A', '0.30'),
      fundedAccount(t, 'Group B', '0.30'),
    ]);
    const keys = (
      await Promise.all(accounts.flatMap((a) => [createToken(t, a.id), createToken(t, a.id)]))
    ).map((k, i) => ({ key: k.key, account: accounts[Math.floor(i / 2)].id }));
    // A first authorize per key, so that the next ones place their holds with the facts.
    for (const k of keys) {
      await authorize({ key: k.key, model: 'gpt-image-2-all', requestId: rid('g0') });
    }
    take();
    const before = await groupSize();
    const asks = Array.from({ length: 60 }, (_, i) => keys[i % keys.length]);
    const holder = new pg.Client({ connectionString: t.databaseUrl });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [accounts[0].id]);
    // Well within the pool's lock_timeout of a second.
    const release = new Promise<void>((resolve) =>
      setTimeout(() => void holder.query('ROLLBACK').then(() => resolve()), 500),
    );
    const answers = await Promise.all(
      asks.map((k) => authorize({ key: k.key, model: 'gpt-image-2-all', requestId: rid('g') })),
    );
    await release;
    await holder.end();
    const after = await groupSize();
    expect(after.sum - before.sum).toBe(60);
    expect(after.count - before.count).toBeLessThan(60);
    for (const account of accounts) {
      const mine = answers.filter((_, i) => asks[i].account === account.id);
      // Two holds were placed before; eight more fit.
      expect(mine.filter((a) => a.allowed)).toHaveLength(8);
      for (const a of mine.filter((x) => !x.allowed)) {
        expect(a).toEqual({ allowed: false, reason: 'insufficient_balance' });
      }
      const row = await t.sql.query<{ held: string; holds: string }>(
        `SELECT a.held::text AS held,
                (SELECT count(*) FROM holds h WHERE h.account_id = a.id AND h.status = 'active')::text AS holds
         FROM accounts a WHERE a.id = $1`,
        [account.id],
      );
      expect(row.rows[0]).toEqual({ held: '0.3000000000', holds: '10' });
    }
    for (const a of answers.filter((x) => x.allowed)) {
      expect(await holdRow(a.hold.requestId)).toEqual({ status: 'active', amount: '0.0300000000' });
    }
  });
});
