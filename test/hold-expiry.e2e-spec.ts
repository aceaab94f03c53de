import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { reconcile } from '../src/statements/reconcile.js';
import {
  Body,
  createToken,
  fundedAccount,
  gatewayHeaders,
  Json,
  postEvent,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const TTL_SECONDS = 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Two instances on one database, with a short HOLD_TTL_SECONDS: a hold stops counting at its
 * expiry whichever instance placed it and whether or not that instance still runs.
 */
describe('hold expiry across instances', () => {
  let a: TestApp;
  let b: TestApp;

  const authorize = (app: TestApp, body: Body): Promise<Json> =>
    app.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(app))
      .send(body)
      .expect(200)
      .then((r) => r.body as Json);
  const me = async (app: TestApp, consoleKey: string): Promise<Json> =>
    (
      await app.http
        .get('/v1/me')
        .set(...bearer(consoleKey))
        .expect(200)
    ).body;
  const statusOf = async (requestId: string): Promise<string> =>
    (await a.sql.query(`SELECT status FROM holds WHERE request_id = $1`, [requestId])).rows[0]
      .status as string;

  beforeAll(async () => {
    a = await createTestApp({ HOLD_TTL_SECONDS: String(TTL_SECONDS) });
    b = await createTestApp({ HOLD_TTL_SECONDS: String(TTL_SECONDS) }, a);
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('stops counting an expired hold at once, lets the other instance use the money, and books a late event', async () => {
    const acc = await fundedAccount(a, 'Expiring', '0.03');
    const token = await createToken(a, acc.id);
    const first = `exp-${randomUUID()}`;
    const placed = await authorize(a, {
      key: token.key,
      model: 'gpt-image-2-all',
      requestId: first,
    });
    expect(placed.hold.amount).toBe('0.03');
    const ttl = Date.parse(placed.hold.expiresAt as string) - Date.now();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 500);
    // While it counts, the other instance sees the money as held.
    expect(
      await authorize(b, {
        key: token.key,
        model: 'gpt-image-2-all',
        requestId: `x-${randomUUID()}`,
      }),
    ).toEqual({
      allowed: false,
      reason: 'insufficient_balance',
    });
    expect(await me(b, acc.consoleKey)).toMatchObject({ held: '0.03', available: '0.00' });

    await sleep(TTL_SECONDS * 1000 + 300);
    // Expired: no longer counted by reads, whether or not a sweep closed it yet.
    expect(await me(b, acc.consoleKey)).toMatchObject({ held: '0.00', available: '0.03' });
    expect(
      (
        await b.http
          .get('/v1/me/holds')
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).body.data,
    ).toEqual([]);
    const second = `exp2-${randomUUID()}`;
    const again = await authorize(b, {
      key: token.key,
      model: 'gpt-image-2-all',
      requestId: second,
    });
    expect(again.allowed).toBe(true);
    expect(await statusOf(first)).toBe('expired');
    // Its request cannot be held again.
    expect(
      await authorize(b, { key: token.key, model: 'gpt-image-2-all', requestId: first }),
    ).toEqual({
      allowed: false,
      reason: 'request_settled',
    });

    // The usage of the expired hold arrives late: still booked, even below zero.
    const late = await postEvent(b, {
      requestId: first,
      tokenId: token.id,
      model: 'gpt-image-2-all',
      statusCode: 200,
    }).expect(201);
    expect(late.body).toMatchObject({ outcome: 'charged', charge: '0.03' });
    expect(await me(a, acc.consoleKey)).toMatchObject({
      balance: '0.00',
      held: '0.03',
      available: '-0.03',
    });
    expect((await reconcile(a.app.get(DataSource))).problems).toEqual([]);
  });

  it('sweeps expired holds of an idle account on the surviving instances after the one that placed them is gone', async () => {
    const acc = await fundedAccount(a, 'Idle', '1.00');
    const token = await createToken(a, acc.id);
    const ids = [`idle1-${randomUUID()}`, `idle2-${randomUUID()}`];
    // A third instance places the holds and is gone before they expire.
    const c = await createTestApp({ HOLD_TTL_SECONDS: String(TTL_SECONDS) }, a);
    for (const requestId of ids)
      await authorize(c, { key: token.key, model: 'gpt-image-2-vip', requestId });
    await c.close();
    expect(
      (await a.sql.query(`SELECT held::text FROM accounts WHERE id = $1`, [acc.id])).rows[0].held,
    ).toBe('0.0600000000');
    // Nobody touches this account again; a surviving instance's sweeper closes its holds.
    await sleep(TTL_SECONDS * 1000 + 2500);
    for (const requestId of ids) expect(await statusOf(requestId)).toBe('expired');
    const row = (await b.sql.query(`SELECT held::text FROM accounts WHERE id = $1`, [acc.id]))
      .rows[0];
    expect(row.held).toBe('0.0000000000');
    const tok = (await b.sql.query(`SELECT held::text FROM api_tokens WHERE id = $1`, [token.id]))
      .rows[0];
    expect(tok.held).toBe('0.0000000000');
    expect((await reconcile(b.app.get(DataSource))).problems).toEqual([]);
  });
});
