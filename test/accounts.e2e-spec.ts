import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import {
  adminHeaders,
  createAccount,
  errorFields,
  expectErrorBody,
  ISO,
  postAdjustment,
  UUID,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const ADJUSTMENT_KEYS = [
  'accountId',
  'amount',
  'balanceAfter',
  'createdAt',
  'id',
  'idempotencyKey',
  'ledgerEntryId',
  'reason',
];

describe('accounts', () => {
  let t: TestApp;
  const me = (consoleKey: string) => t.http.get('/v1/me').set(...bearer(consoleKey));

  /** What the database holds for an account: its balance, its ledger sum and last balance_after. */
  const stored = async (accountId: string) => {
    const r = await t.sql.query<{
      balance: string;
      ledger_sum: string;
      last_after: string | null;
      entries: string;
    }>(
      `SELECT (SELECT balance::text FROM accounts WHERE id = $1) AS balance,
              (SELECT coalesce(sum(amount), 0)::text FROM ledger_entries WHERE account_id = $1) AS ledger_sum,
              (SELECT balance_after::text FROM ledger_entries WHERE account_id = $1 ORDER BY id DESC LIMIT 1) AS last_after,
              (SELECT count(*)::text FROM ledger_entries WHERE account_id = $1) AS entries`,
      [accountId],
    );
    const row = r.rows[0];
    return {
      balance: new Decimal(row.balance),
      ledgerSum: new Decimal(row.ledger_sum),
      lastAfter: row.last_after === null ? null : new Decimal(row.last_after),
      entries: Number(row.entries),
    };
  };

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('admin accounts', () => {
    it('creates an account with 201 and shows a ck_ console key once', async () => {
      const res = await t.http
        .post('/v1/admin/accounts')
        .set(...adminHeaders(t))
        .send({ name: 'Acme Imaging', email: 'billing@acme.test' })
        .expect(201);
      expect(res.body).toMatchObject({
        id: expect.stringMatching(UUID),
        name: 'Acme Imaging',
        email: 'billing@acme.test',
        status: 'active',
        balance: '0.00',
        currency: 'USD',
        consoleKey: expect.stringMatching(/^ck_.{20,}$/),
      });
      const key = res.body.consoleKey as string;
      const id = res.body.id as string;

      const one = await t.http
        .get(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(one.body).not.toHaveProperty('consoleKey');
      expect(JSON.stringify(one.body)).not.toContain(key);
      const list = await t.http
        .get('/v1/admin/accounts')
        .set(...adminHeaders(t))
        .expect(200);
      expect(JSON.stringify(list.body)).not.toContain(key);
      for (const a of list.body.data as object[]) expect(a).not.toHaveProperty('consoleKey');
    });

    it('stores only a hash of the console key, never the key itself', async () => {
      const { id, consoleKey } = await createAccount(t, 'Hash check');
      const cols = await t.sql.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'`,
      );
      const names = cols.rows.map((c) => c.column_name);
      expect(names).toContain('console_key_hash');
      expect(names).not.toContain('console_key');
      const row = await t.sql.query(`SELECT * FROM accounts WHERE id = $1`, [id]);
      expect(row.rowCount).toBe(1);
      expect(JSON.stringify(row.rows[0])).not.toContain(consoleKey);
      expect(row.rows[0].console_key_hash).not.toBe(consoleKey);
    });

    it('creates an account without an email', async () => {
      const res = await t.http
        .post('/v1/admin/accounts')
        .set(...adminHeaders(t))
        .send({ name: 'No mail' })
        .expect(201);
      expect(res.body.email).toBeNull();
      expect(res.body.consoleKey).toMatch(/^ck_/);
    });

    it.each([
      ['a missing name', { email: 'a@b.test' }, ['name']],
      ['an empty name', { name: '' }, ['name']],
      ['a bad email', { name: 'X', email: 'not-an-email' }, ['email']],
      ['an unknown field', { name: 'X', balance: '1000.00' }, ['balance']],
      ['a missing name and a bad email', { email: 'nope' }, ['email', 'name']],
    ])('refuses creation with %s with 400 naming the fields', async (_what, body, fields) => {
      const before = await t.sql.query(`SELECT count(*)::int AS n FROM accounts`);
      const res = await t.http
        .post('/v1/admin/accounts')
        .set(...adminHeaders(t))
        .send(body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual([...fields].sort());
      const after = await t.sql.query(`SELECT count(*)::int AS n FROM accounts`);
      expect(after.rows[0].n).toBe(before.rows[0].n);
    });

    it('lists every account exactly once, newest first, across pages of 2', async () => {
      const created: string[] = [];
      for (let i = 0; i < 5; i++) created.push((await createAccount(t, `Paged ${i}`)).id);
      const all = await t.sql.query<{ id: string }>(`SELECT id FROM accounts`);

      const seen: { id: string; createdAt: string }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Response = await t.http
          .get('/v1/admin/accounts')
          .query(cursor ? { limit: 2, cursor } : { limit: 2 })
          .set(...adminHeaders(t))
          .expect(200);
        expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...(res.body.data as { id: string; createdAt: string }[]));
        cursor = res.body.nextCursor as string | null;
        pages++;
        expect(pages).toBeLessThan(100);
      } while (cursor !== null);

      const ids = seen.map((a) => a.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort()).toEqual(all.rows.map((r) => r.id).sort());
      for (let i = 1; i < seen.length; i++) {
        expect(Date.parse(seen[i - 1].createdAt)).toBeGreaterThanOrEqual(
          Date.parse(seen[i].createdAt),
        );
      }
      // Created one after another: the last created comes first.
      const positions = [...created].reverse().map((id) => ids.indexOf(id));
      expect(positions.every((p) => p >= 0)).toBe(true);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    });

    it('refuses a bad cursor and an out-of-range limit with 400', async () => {
      const bad = await t.http
        .get('/v1/admin/accounts')
        .query({ cursor: 'garbage' })
        .set(...adminHeaders(t));
      expectErrorBody(bad, 400, 'validation_failed');
      expect(errorFields(bad)).toEqual(['cursor']);
      for (const limit of ['0', '501']) {
        const res = await t.http
          .get('/v1/admin/accounts')
          .query({ limit })
          .set(...adminHeaders(t));
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual(['limit']);
      }
    });

    it('gets one account by id', async () => {
      const { id } = await createAccount(t, 'Readable', { email: 'r@acme.test' });
      const res = await t.http
        .get(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(res.body).toMatchObject({
        id,
        name: 'Readable',
        email: 'r@acme.test',
        status: 'active',
        balance: '0.00',
        currency: 'USD',
        createdAt: expect.stringMatching(ISO),
        updatedAt: expect.stringMatching(ISO),
      });
    });

    it('answers 404 for an unknown uuid and for an id that is not a uuid', async () => {
      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '1']) {
        expectErrorBody(
          await t.http.get(`/v1/admin/accounts/${id}`).set(...adminHeaders(t)),
          404,
          'not_found',
        );
      }
    });

    it('renames an account and suspends and reactivates it', async () => {
      const { id } = await createAccount(t, 'Before rename');
      const renamed = await t.http
        .patch(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .send({ name: 'After rename' })
        .expect(200);
      expect(renamed.body).toMatchObject({ id, name: 'After rename', status: 'active' });

      const suspended = await t.http
        .patch(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .send({ status: 'suspended' })
        .expect(200);
      expect(suspended.body).toMatchObject({ id, name: 'After rename', status: 'suspended' });
      const stored1 = await t.sql.query(`SELECT name, status FROM accounts WHERE id = $1`, [id]);
      expect(stored1.rows[0]).toEqual({ name: 'After rename', status: 'suspended' });

      const active = await t.http
        .patch(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .send({ status: 'active' })
        .expect(200);
      expect(active.body.status).toBe('active');
      const got = await t.http
        .get(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(got.body).toMatchObject({ name: 'After rename', status: 'active' });
    });

    it.each([
      ['an unknown status', { status: 'closed' }, ['status']],
      ['a status in the wrong case', { status: 'Suspended' }, ['status']],
      ['an empty name', { name: '' }, ['name']],
      ['a balance (not patchable)', { balance: '1000.00' }, ['balance']],
    ])('refuses a patch with %s with 400 naming the field', async (_what, body, fields) => {
      const { id } = await createAccount(t, 'Patch target');
      const res = await t.http
        .patch(`/v1/admin/accounts/${id}`)
        .set(...adminHeaders(t))
        .send(body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(fields);
      const row = await t.sql.query(
        `SELECT name, status, balance::text AS balance FROM accounts WHERE id = $1`,
        [id],
      );
      expect(row.rows[0]).toEqual({
        name: 'Patch target',
        status: 'active',
        balance: '0.0000000000',
      });
    });

    it('answers 404 when patching or rotating the key of an unknown account', async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      expectErrorBody(
        await t.http
          .patch(`/v1/admin/accounts/${unknown}`)
          .set(...adminHeaders(t))
          .send({ name: 'Ghost' }),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http.post(`/v1/admin/accounts/${unknown}/console-key`).set(...adminHeaders(t)),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http.post('/v1/admin/accounts/not-a-uuid/console-key').set(...adminHeaders(t)),
        404,
        'not_found',
      );
    });

    it('rotates the console key: the old key gets 401, the new one works', async () => {
      const { id, consoleKey: oldKey } = await createAccount(t, 'Rotator');
      await me(oldKey).expect(200);

      const res = await t.http.post(`/v1/admin/accounts/${id}/console-key`).set(...adminHeaders(t));
      expect(res.status).toBe(201);
      const newKey = res.body.consoleKey as string;
      expect(newKey).toMatch(/^ck_/);
      expect(newKey).not.toBe(oldKey);
      expect(res.body.id).toBe(id);

      expectErrorBody(await me(oldKey), 401, 'unauthorized');
      const now = await me(newKey).expect(200);
      expect(now.body.id).toBe(id);
      const row = await t.sql.query(`SELECT * FROM accounts WHERE id = $1`, [id]);
      expect(JSON.stringify(row.rows[0])).not.toContain(newKey);
    });
  });

  describe('GET /v1/me', () => {
    it('answers the console key with exactly its own account', async () => {
      const { id, consoleKey } = await createAccount(t, 'Me Corp', { email: 'me@corp.test' });
      await createAccount(t, 'Someone else');
      const res = await me(consoleKey).expect(200);
      expect(res.body).toEqual({
        id,
        name: 'Me Corp',
        email: 'me@corp.test',
        status: 'active',
        balance: '0.00',
        held: '0.00',
        available: '0.00',
        creditLimit: '0.00',
        currency: 'USD',
      });
    });

    it('answers 401 without a key and for an unknown console key', async () => {
      expectErrorBody(await t.http.get('/v1/me'), 401, 'unauthorized');
      expectErrorBody(await me('ck_this-key-was-never-issued'), 401, 'unauthorized');
    });

    it('answers 403 to the admin key and to the gateway key', async () => {
      expectErrorBody(await me(t.adminKey), 403, 'forbidden');
      expectErrorBody(await me(t.gatewayKey), 403, 'forbidden');
    });

    it('answers 403 to a customer key on admin routes, changing nothing', async () => {
      const { id, consoleKey } = await createAccount(t, 'Climber');
      expectErrorBody(
        await t.http.get('/v1/admin/accounts').set(...bearer(consoleKey)),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http.get(`/v1/admin/accounts/${id}`).set(...bearer(consoleKey)),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http
          .post(`/v1/admin/accounts/${id}/adjustments`)
          .set(...bearer(consoleKey))
          .set('Idempotency-Key', 'self-credit')
          .send({ amount: '1000.00', reason: 'free money' }),
        403,
        'forbidden',
      );
      const s = await stored(id);
      expect(s.balance.isZero()).toBe(true);
      expect(s.entries).toBe(0);
    });
  });

  describe('adjustments', () => {
    it('books a credit and a debit: 201 with the adjustment, and the balance reads 95.00', async () => {
      const { id, consoleKey } = await createAccount(t, 'Adjusted');
      const credit = await postAdjustment(t, id, 'adj-credit-1', {
        amount: '100.00',
        reason: 'Opening credit',
      });
      expect(credit.status).toBe(201);
      expect(credit.body).toMatchObject({ amount: '100.00', balanceAfter: '100.00' });

      const debit = await postAdjustment(t, id, 'adj-debit-1', {
        amount: '-5.00',
        reason: 'Manual correction',
      });
      expect(debit.status).toBe(201);
      expect(Object.keys(debit.body).sort()).toEqual(ADJUSTMENT_KEYS);
      expect(debit.body).toEqual({
        id: expect.any(String),
        accountId: id,
        amount: '-5.00',
        reason: 'Manual correction',
        idempotencyKey: 'adj-debit-1',
        ledgerEntryId: expect.any(String),
        balanceAfter: '95.00',
        createdAt: expect.stringMatching(ISO),
      });
      expect(debit.body.id).not.toBe(credit.body.id);
      expect(debit.body.ledgerEntryId).not.toBe('');

      const mine = await me(consoleKey).expect(200);
      expect(mine.body.balance).toBe('95.00');

      const entries = await t.sql.query(
        `SELECT id::text AS id, type, amount::text AS amount, balance_after::text AS balance_after
         FROM ledger_entries WHERE account_id = $1 ORDER BY id`,
        [id],
      );
      expect(entries.rows).toEqual([
        {
          id: credit.body.ledgerEntryId,
          type: 'adjustment',
          amount: '100.0000000000',
          balance_after: '100.0000000000',
        },
        {
          id: debit.body.ledgerEntryId,
          type: 'adjustment',
          amount: '-5.0000000000',
          balance_after: '95.0000000000',
        },
      ]);
    });

    it('refuses a missing Idempotency-Key with 400 naming the header', async () => {
      const { id } = await createAccount(t, 'No key');
      const res = await postAdjustment(t, id, null, { amount: '-5.00', reason: 'no key' });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['Idempotency-Key']);
      expect((await stored(id)).entries).toBe(0);
    });

    it.each([
      ['an amount sent as a JSON number', { amount: -5, reason: 'r' }, ['amount']],
      ['an amount of "0"', { amount: '0', reason: 'r' }, ['amount']],
      ['an amount of "-0.00"', { amount: '-0.00', reason: 'r' }, ['amount']],
      ['an amount of "abc"', { amount: 'abc', reason: 'r' }, ['amount']],
      ['an amount in exponent form', { amount: '1e3', reason: 'r' }, ['amount']],
      ['a missing amount', { reason: 'r' }, ['amount']],
      ['a missing reason', { amount: '-5.00' }, ['reason']],
      ['an empty reason', { amount: '-5.00', reason: '' }, ['reason']],
      ['an unknown field', { amount: '-5.00', reason: 'r', ledgerEntryId: '1' }, ['ledgerEntryId']],
      ['a numeric amount and no reason', { amount: 5 }, ['amount', 'reason']],
    ])('refuses %s with 400 naming the fields, booking nothing', async (_what, body, fields) => {
      const { id } = await createAccount(t, 'Bad adjustment');
      const res = await postAdjustment(t, id, `bad-${randomUUID()}`, body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual([...fields].sort());
      const s = await stored(id);
      expect(s.entries).toBe(0);
      expect(s.balance.isZero()).toBe(true);
      const adj = await t.sql.query(`SELECT 1 FROM adjustments WHERE account_id = $1`, [id]);
      expect(adj.rowCount).toBe(0);
    });

    // The contract asks for every failing field in one 400, header included.
    it('names both the missing Idempotency-Key and a bad amount in one 400', async () => {
      const { id } = await createAccount(t, 'Two faults');
      const res = await postAdjustment(t, id, null, { amount: 5, reason: 'r' });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['Idempotency-Key', 'amount']);
    });

    it('replays the same key and body with 200 and the same adjustment, booking nothing more', async () => {
      const { id, consoleKey } = await createAccount(t, 'Replayer');
      const first = await postAdjustment(t, id, 'replay-1', { amount: '20.00', reason: 'promo' });
      expect(first.status).toBe(201);
      const again = await postAdjustment(t, id, 'replay-1', { amount: '20.00', reason: 'promo' });
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
      expect((await me(consoleKey).expect(200)).body.balance).toBe('20.00');
      const s = await stored(id);
      expect(s.entries).toBe(1);
      expect(s.balance.equals(20)).toBe(true);
    });

    it('answers 409 idempotency_conflict for the same key with a different body', async () => {
      const { id, consoleKey } = await createAccount(t, 'Conflicted');
      expect(
        (await postAdjustment(t, id, 'conflict-1', { amount: '10.00', reason: 'first' })).status,
      ).toBe(201);
      expectErrorBody(
        await postAdjustment(t, id, 'conflict-1', { amount: '11.00', reason: 'first' }),
        409,
        'idempotency_conflict',
      );
      expectErrorBody(
        await postAdjustment(t, id, 'conflict-1', { amount: '10.00', reason: 'second' }),
        409,
        'idempotency_conflict',
      );
      expect((await me(consoleKey).expect(200)).body.balance).toBe('10.00');
      expect((await stored(id)).entries).toBe(1);
    });

    // Protects the race of concurrent replays: twenty copies of one request arriving together
    // must claim the idempotency key once; the losers wait and read the stored outcome.
    it('books one adjustment when the same request arrives 20 times at once', async () => {
      const { id, consoleKey } = await createAccount(t, 'Stampede');
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          postAdjustment(t, id, 'stampede-1', { amount: '7.77', reason: 'same request' }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(19);
      expect(new Set(results.map((r) => r.body.id as string)).size).toBe(1);
      expect(new Set(results.map((r) => r.body.ledgerEntryId as string)).size).toBe(1);
      for (const r of results) expect(r.body.balanceAfter).toBe('7.77');

      const count = await t.sql.query(
        `SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1`,
        [id],
      );
      expect(count.rows[0].n).toBe(1);
      const s = await stored(id);
      expect(s.balance.equals(s.ledgerSum)).toBe(true);
      expect(s.balance.equals('7.77')).toBe(true);
      expect((await me(consoleKey).expect(200)).body.balance).toBe('7.77');
    });

    // Protects the race of concurrent bookings on one account: each must see the balance the
    // previous one left, so no update is lost and every balance_after is a running sum.
    it('keeps the balance exact under 30 different concurrent adjustments on one account', async () => {
      const { id, consoleKey } = await createAccount(t, 'Parallel');
      const amounts = Array.from(
        { length: 30 },
        (_, i) => `${Math.floor((i + 1) / 10)}.${(i + 1) % 10}`,
      );
      expect(amounts.slice(0, 3)).toEqual(['0.1', '0.2', '0.3']);
      expect(amounts[29]).toBe('3.0');
      const expected = amounts.reduce((sum, a) => sum.plus(a), new Decimal(0));
      expect(expected.toFixed(2)).toBe('46.50');

      const results = await Promise.all(
        amounts.map((amount, i) =>
          postAdjustment(t, id, `parallel-${i}`, { amount, reason: `part ${i}` }),
        ),
      );
      for (const r of results) expect(r.status).toBe(201);

      const s = await stored(id);
      expect(s.entries).toBe(30);
      expect(s.balance.equals(expected)).toBe(true);
      expect(s.ledgerSum.equals(expected)).toBe(true);
      expect(s.lastAfter?.equals(expected)).toBe(true);
      expect((await me(consoleKey).expect(200)).body.balance).toBe('46.50');

      // Every entry's balance_after is the running sum in booking order.
      const entries = await t.sql.query<{ amount: string; balance_after: string }>(
        `SELECT amount::text AS amount, balance_after::text AS balance_after FROM ledger_entries
         WHERE account_id = $1 ORDER BY id`,
        [id],
      );
      let running = new Decimal(0);
      for (const e of entries.rows) {
        running = running.plus(e.amount);
        expect(new Decimal(e.balance_after).equals(running)).toBe(true);
      }
      const reported = results
        .map((r) => new Decimal(r.body.balanceAfter as string).toFixed(10))
        .sort();
      const booked = entries.rows.map((e) => new Decimal(e.balance_after).toFixed(10)).sort();
      expect(reported).toEqual(booked);
    });

    it('answers 404 for an unknown account, booking nothing', async () => {
      expectErrorBody(
        await postAdjustment(t, '00000000-0000-4000-8000-000000000000', 'ghost-1', {
          amount: '5.00',
          reason: 'ghost',
        }),
        404,
        'not_found',
      );
      expectErrorBody(
        await postAdjustment(t, 'not-a-uuid', 'ghost-2', { amount: '5.00', reason: 'ghost' }),
        404,
        'not_found',
      );
      const adj = await t.sql.query(
        `SELECT 1 FROM adjustments WHERE idempotency_key LIKE 'ghost-%'`,
      );
      expect(adj.rowCount).toBe(0);
    });
  });

  describe('error bodies', () => {
    it('always have the shape { error: { code, message, details? } }', async () => {
      const { id, consoleKey } = await createAccount(t, 'Errors');
      const cases: [Promise<Response>, number, string][] = [
        [t.http.get('/v1/admin/accounts'), 401, 'unauthorized'],
        [me(t.adminKey), 403, 'forbidden'],
        [t.http.get(`/v1/admin/accounts/${id}`).set(...bearer(consoleKey)), 403, 'forbidden'],
        [
          t.http
            .get('/v1/admin/accounts/00000000-0000-4000-8000-000000000000')
            .set(...adminHeaders(t)),
          404,
          'not_found',
        ],
        [
          t.http
            .post('/v1/admin/accounts')
            .set(...adminHeaders(t))
            .send({ name: 42 }),
          400,
          'validation_failed',
        ],
        [postAdjustment(t, id, null, { amount: '1.00', reason: 'r' }), 400, 'validation_failed'],
      ];
      for (const [req, status, code] of cases) expectErrorBody(await req, status, code);

      expect((await postAdjustment(t, id, 'shape-1', { amount: '1.00', reason: 'r' })).status).toBe(
        201,
      );
      expectErrorBody(
        await postAdjustment(t, id, 'shape-1', { amount: '2.00', reason: 'r' }),
        409,
        'idempotency_conflict',
      );
    });
  });
});
