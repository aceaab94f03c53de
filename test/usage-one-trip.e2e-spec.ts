import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomUUID } from 'node:crypto';
import {
  adminHeaders,
  Body,
  createToken,
  fundedAccount,
  gatewayHeaders,
  Json,
  postEvent,
  postEvents,
} from './helpers/api.js';
import { watchNamedStatements, type StatementWatch } from './helpers/statements.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const rid = (tag: string): string => `${tag}-${randomUUID()}`;

const LONG_WAY = ['usage_lock_for_usage', 'usage_insert_new', 'ledger_apply_booking'];

/**
 * Ingestion in one round trip: once this instance has written an event of a token the long
 * way (lock, price, insert, book), its next events are priced before any lock and written by
 * one call of usage_book, which checks under the account locks that the token's account,
 * group and ratio and the model's price version are still the ones in force. These prove the
 * remembered context is never trusted: a new ratio, a new group or a new price send the write
 * the long way, and what the short way books is what the long way would have booked.
 */
describe('usage ingestion in one round trip', () => {
  let t: TestApp;
  let watch: StatementWatch;

  const take = (): string[] => watch.take();
  const event = (tokenId: string, requestId: string, extra: Body = {}): Body => ({
    requestId,
    tokenId,
    model: 'gpt-image-2-all',
    statusCode: 200,
    ...extra,
  });
  const putPrice = (model: string, body: Body) =>
    t.http
      .put(`/v1/admin/models/${model}`)
      .set(...adminHeaders(t))
      .send(body);
  /** The account's ledger, oldest first, and whether each balance_after follows the one before. */
  const chain = async (
    accountId: string,
  ): Promise<{ entries: { amount: string; after: string; reference: string }[]; ok: boolean }> => {
    const rows = (
      await t.sql.query<{ amount: string; after: string; reference: string }>(
        `SELECT amount::text AS amount, balance_after::text AS after, reference FROM ledger_entries
         WHERE account_id = $1 ORDER BY created_at, id`,
        [accountId],
      )
    ).rows;
    let ok = rows.length > 0;
    for (let i = 1; i < rows.length; i++) {
      const expected = new Decimal(rows[i - 1].after).plus(rows[i].amount);
      if (!expected.eq(rows[i].after)) ok = false;
    }
    const balance = (
      await t.sql.query<{ balance: string }>(
        `SELECT balance::text AS balance FROM accounts WHERE id = $1`,
        [accountId],
      )
    ).rows[0].balance;
    if (rows.length > 0 && !new Decimal(rows[rows.length - 1].after).eq(balance)) ok = false;
    return { entries: rows, ok };
  };

  beforeAll(async () => {
    t = await createTestApp();
    watch = watchNamedStatements(['usage_book', ...LONG_WAY]);
  });
  afterEach(() => {
    take();
  });
  afterAll(async () => {
    watch.restore();
    await t.close();
  });

  it('writes a token’s second event in one statement, charged and booked as the first', async () => {
    const acc = await fundedAccount(t, 'One trip usage');
    const token = await createToken(t, acc.id);
    const first = await postEvent(t, event(token.id, rid('first'))).expect(201);
    expect(take()).toEqual(LONG_WAY);
    const second = await postEvent(t, event(token.id, rid('second'))).expect(201);
    expect(take()).toEqual(['usage_book']);

    const strip = (b: Json): Json => ({ ...b, requestId: '', occurredAt: '', recordedAt: '' });
    expect(strip(second.body as Json)).toEqual(strip(first.body as Json));
    expect(second.body).toMatchObject({ outcome: 'charged', charge: '0.03', duplicate: false });

    const c = await chain(acc.id);
    expect(c.ok).toBe(true);
    expect(c.entries.map((e) => [e.amount, e.after])).toEqual([
      ['10.0000000000', '10.0000000000'],
      ['-0.0300000000', '9.9700000000'],
      ['-0.0300000000', '9.9400000000'],
    ]);
    const row = await t.sql.query<{ spent: string; n: number; charge: string }>(
      `SELECT t.spent::text AS spent, d.requests::int AS n, d.charge::text AS charge
       FROM api_tokens t JOIN usage_daily d ON d.account_id = t.account_id WHERE t.id = $1`,
      [token.id],
    );
    expect(row.rows).toEqual([{ spent: '0.0600000000', n: 2, charge: '0.0600000000' }]);

    // A replay of the short way's event is a duplicate with the same answer.
    const replay = await postEvent(t, event(token.id, second.body.requestId as string)).expect(200);
    expect(replay.body).toEqual({ ...second.body, duplicate: true });
    const conflict = await postEvent(
      t,
      event(token.id, second.body.requestId as string, { model: 'gpt-image-2-vip' }),
    );
    expect(conflict.status).toBe(409);
    take();

    // A tokens-priced event: the short way answers the same breakdown the long way did.
    const tokens = { model: 'gpt-image-2', usage: { inputTokens: 89, outputTokens: 1145 } };
    const long = await postEvent(t, event(token.id, rid('tok1'), tokens)).expect(201);
    expect(take()).toEqual(LONG_WAY);
    const short = await postEvent(t, event(token.id, rid('tok2'), tokens)).expect(201);
    expect(take()).toEqual(['usage_book']);
    expect(strip(short.body as Json)).toEqual(strip(long.body as Json));
    expect((short.body.breakdown as unknown[]).length).toBeGreaterThan(0);
  });

  it('books a batch on one account in one statement with an unbroken balance chain', async () => {
    const acc = await fundedAccount(t, 'One trip batch');
    const token = await createToken(t, acc.id);
    const other = await fundedAccount(t, 'One trip batch, second account', '5.00');
    const otherToken = await createToken(t, other.id);
    await postEvents(t, [
      event(token.id, rid('warm')),
      event(otherToken.id, rid('warm'), { model: 'gpt-image-2-vip' }),
    ]).expect(200);
    take();
    const prior = rid('prior');
    await postEvent(t, event(token.id, prior)).expect(201);
    take();

    const events = [
      event(token.id, rid('b1')),
      event(otherToken.id, rid('b2')),
      event(token.id, rid('b3'), { statusCode: 500 }),
      event(token.id, rid('b4'), { model: 'gpt-image-2-vip', images: 3 }),
      event(token.id, prior),
      event(otherToken.id, rid('b6'), { model: 'gpt-image-2-vip' }),
      event(token.id, rid('b7')),
    ];
    const res = await postEvents(t, events).expect(200);
    expect(take()).toEqual(['usage_book']);
    expect((res.body.results as Json[]).map((r) => [r.outcome, r.charge])).toEqual([
      ['charged', '0.03'],
      ['charged', '0.03'],
      ['skipped', '0'],
      ['charged', '0.09'],
      ['duplicate', '0.03'],
      ['charged', '0.03'],
      ['charged', '0.03'],
    ]);
    const mine = await chain(acc.id);
    expect(mine.ok).toBe(true);
    // Credit, warm-up, prior, then b1, b4, b7 in input order.
    expect(mine.entries.map((e) => e.after)).toEqual([
      '10.0000000000',
      '9.9700000000',
      '9.9400000000',
      '9.9100000000',
      '9.8200000000',
      '9.7900000000',
    ]);
    expect(mine.entries.slice(3).map((e) => e.reference)).toEqual([
      events[0].requestId,
      events[3].requestId,
      events[6].requestId,
    ]);
    const theirs = await chain(other.id);
    expect(theirs.ok).toBe(true);
    expect(theirs.entries.map((e) => e.after)).toEqual([
      '5.0000000000',
      '4.9700000000',
      '4.9400000000',
      '4.9100000000',
    ]);
  });

  it('charges the new ratio once the group changes it, going the long way once', async () => {
    const group = `usagetrip${randomUUID().slice(0, 8)}`;
    await t.http
      .post('/v1/admin/groups')
      .set(...adminHeaders(t))
      .send({ name: group, ratio: '1.5', description: 'one trip', selectable: false })
      .expect(201);
    const acc = await fundedAccount(t, 'Ratio change usage');
    const token = await createToken(t, acc.id, { group });
    expect((await postEvent(t, event(token.id, rid('r1'))).expect(201)).body).toMatchObject({
      charge: '0.045',
      ratio: '1.5',
    });
    await postEvent(t, event(token.id, rid('r2'))).expect(201);
    take();
    await t.http
      .patch(`/v1/admin/groups/${group}`)
      .set(...adminHeaders(t))
      .send({ ratio: '2' })
      .expect(200);
    const after = await postEvent(t, event(token.id, rid('r3'))).expect(201);
    expect(after.body).toMatchObject({ charge: '0.06', group });
    expect(new Decimal(after.body.ratio as string).eq(2)).toBe(true);
    // usage_book refused the remembered ratio and wrote nothing; the long way charged the new one.
    expect(take()).toEqual(['usage_book', ...LONG_WAY]);
    await postEvent(t, event(token.id, rid('r4'))).expect(201);
    expect(take()).toEqual(['usage_book']);
    const c = await chain(acc.id);
    expect(c.ok).toBe(true);
    expect(c.entries.map((e) => e.amount)).toEqual([
      '10.0000000000',
      '-0.0450000000',
      '-0.0450000000',
      '-0.0600000000',
      '-0.0600000000',
    ]);
  });

  it('charges the new group’s ratio once the token moves to another group', async () => {
    const group = `usagemove${randomUUID().slice(0, 8)}`;
    await t.http
      .post('/v1/admin/groups')
      .set(...adminHeaders(t))
      .send({ name: group, ratio: '3', description: 'one trip move', selectable: true })
      .expect(201);
    const acc = await fundedAccount(t, 'Group move usage');
    const token = await createToken(t, acc.id);
    await postEvent(t, event(token.id, rid('m1'))).expect(201);
    await postEvent(t, event(token.id, rid('m2'))).expect(201);
    take();
    await t.http
      .patch(`/v1/me/tokens/${token.id}`)
      .set(...bearer(acc.consoleKey))
      .send({ group })
      .expect(200);
    const moved = await postEvent(t, event(token.id, rid('m3'))).expect(201);
    expect(moved.body).toMatchObject({ charge: '0.09', group });
    expect(take()).toEqual(['usage_book', ...LONG_WAY]);
  });

  it('charges a new price version once it is in force, not the one remembered', async () => {
    const model = `usage-trip-${randomUUID().slice(0, 8)}`;
    expect([200, 201]).toContain(
      (await putPrice(model, { mode: 'per_request', perRequest: '0.05' })).status,
    );
    const acc = await fundedAccount(t, 'Price change usage');
    const token = await createToken(t, acc.id);
    await postEvent(t, event(token.id, rid('p1'), { model })).expect(201);
    const short = await postEvent(t, event(token.id, rid('p2'), { model })).expect(201);
    expect(short.body).toMatchObject({ charge: '0.05', priceVersion: 1 });
    take();
    expect([200, 201]).toContain(
      (await putPrice(model, { mode: 'per_request', perRequest: '0.07' })).status,
    );
    const after = await postEvent(t, event(token.id, rid('p3'), { model })).expect(201);
    expect(after.body).toMatchObject({ charge: '0.07', priceVersion: 2 });
    expect(take()).toEqual(['usage_book', ...LONG_WAY]);
    const c = await chain(acc.id);
    expect(c.ok).toBe(true);
    expect(c.entries.map((e) => e.amount)).toEqual([
      '10.0000000000',
      '-0.0500000000',
      '-0.0500000000',
      '-0.0700000000',
    ]);
  });

  it('settles the event’s hold in the same statement', async () => {
    const acc = await fundedAccount(t, 'Hold settle usage');
    const token = await createToken(t, acc.id);
    await postEvent(t, event(token.id, rid('h0'))).expect(201);
    take();
    const requestId = rid('h1');
    const auth = await t.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(t))
      .send({ key: token.key, model: 'gpt-image-2-all', requestId })
      .expect(200);
    expect(auth.body).toMatchObject({ allowed: true, hold: { amount: '0.03' } });
    await postEvent(t, event(token.id, requestId)).expect(201);
    expect(take()).toEqual(['usage_book']);
    const held = await t.sql.query<{ status: string; account: string; token: string }>(
      `SELECT h.status, a.held::text AS account, t.held::text AS token
       FROM holds h JOIN accounts a ON a.id = h.account_id JOIN api_tokens t ON t.id = h.token_id
       WHERE h.request_id = $1`,
      [requestId],
    );
    expect(held.rows).toEqual([
      { status: 'settled', account: '0.0000000000', token: '0.0000000000' },
    ]);
  });
});
