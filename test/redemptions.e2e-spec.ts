import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { createHash, randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import {
  adminHeaders,
  balanceOf,
  createAccount,
  createRedemptionBatch,
  errorFields,
  expectErrorBody,
  expectLedgerConsistent,
  fundedAccount,
  gatewayHeaders,
  ISO,
  Json,
  redeem,
  UUID,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

/*
 * Issue 10, item 5: prepaid redemption codes. Admins make batches (codes shown once, stored as
 * SHA-256 hashes); a customer redeems a code once, ever, for its credit (ledger type
 * redemption); every code that does not credit answers the same 400 invalid_code; 10 failed
 * attempts in a minute get an account 429, counted in PostgreSQL across instances.
 */

const CODE = /^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}$/;
const inSeconds = (s: number): string => new Date(Date.now() + s * 1000).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('redemption codes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const newAccount = () => createAccount(t, `Redeemer ${randomBytes(3).toString('hex')}`);
  const batch = (body: Record<string, unknown> = {}): Promise<Json> =>
    createRedemptionBatch(t, { name: 'Reseller Acme', credit: '10.00', count: 3, ...body });

  const listBatches = async (): Promise<Json[]> =>
    (
      await t.http
        .get('/v1/admin/redemption-codes')
        .query({ limit: 500 })
        .set(...adminHeaders(t))
        .expect(200)
    ).body.data;

  const attempts = async (accountId: string): Promise<number> =>
    Number(
      (
        await t.sql.query<{ n: string }>(
          `SELECT count(*) AS n FROM redemption_attempts WHERE account_id = $1`,
          [accountId],
        )
      ).rows[0].n,
    );

  const redemptionEntries = async (accountId: string): Promise<string[]> =>
    (
      await t.sql.query<{ amount: string }>(
        `SELECT amount::text AS amount FROM ledger_entries WHERE account_id = $1 AND type = 'redemption'`,
        [accountId],
      )
    ).rows.map((r) => new Decimal(r.amount).toFixed());

  const expectInvalid = (res: Response): void => {
    expectErrorBody(res, 400, 'invalid_code');
    expect(res.body).toEqual({
      error: { code: 'invalid_code', message: 'this code cannot be redeemed' },
    });
  };

  describe('batches', () => {
    it('makes codes shown once, stored only as hashes, with at least 80 random bits', async () => {
      const created = await batch({ count: 25, expiresAt: inSeconds(3600) });
      expect(created).toEqual({
        batchId: expect.stringMatching(UUID),
        name: 'Reseller Acme',
        credit: '10.00',
        count: 25,
        expiresAt: expect.stringMatching(ISO),
        codes: expect.any(Array),
      });
      const codes = created.codes as string[];
      expect(codes).toHaveLength(25);
      expect(new Set(codes).size).toBe(25);
      // 20 characters of a 32-letter alphabet: 100 bits.
      for (const c of codes) expect(c).toMatch(CODE);

      const stored = await t.sql.query<{ code_hash: string }>(
        `SELECT code_hash FROM redemption_codes WHERE batch_id = $1`,
        [created.batchId],
      );
      expect(stored.rows).toHaveLength(25);
      const hashes = new Set(stored.rows.map((r) => r.code_hash));
      for (const c of codes) {
        expect(hashes.has(createHash('sha256').update(c.replace(/-/g, '')).digest('hex'))).toBe(
          true,
        );
      }
      // No code, in any spelling, anywhere in the database.
      const dump = await t.sql.query(
        `SELECT string_agg(x::text, '|') AS all FROM (SELECT * FROM redemption_codes) x`,
      );
      for (const c of codes) {
        expect(dump.rows[0].all).not.toContain(c);
        expect(dump.rows[0].all).not.toContain(c.replace(/-/g, ''));
      }

      const listed = (await listBatches()).find((b) => b.batchId === created.batchId);
      expect(listed).toEqual({
        batchId: created.batchId,
        name: 'Reseller Acme',
        credit: '10.00',
        count: 25,
        redeemed: 0,
        disabled: 0,
        expiresAt: created.expiresAt,
        disabledAt: null,
        createdAt: expect.stringMatching(ISO),
      });
      expect(JSON.stringify(await listBatches())).not.toContain(codes[0]);

      // The audit log records the batch, never a code.
      const audit = await t.http
        .get('/v1/admin/audit-log')
        .query({ target: `redemption_batch:${created.batchId}` })
        .set(...adminHeaders(t))
        .expect(200);
      expect(audit.body.data).toHaveLength(1);
      expect(audit.body.data[0]).toMatchObject({
        actor: 'admin',
        action: 'redemption_batch.create',
        before: null,
        after: { batchId: created.batchId, count: 25, redeemed: 0 },
      });
      for (const c of codes) expect(JSON.stringify(audit.body)).not.toContain(c);
    });

    it.each([
      ['no name', { name: undefined }, ['name']],
      ['a zero credit', { credit: '0' }, ['credit']],
      ['a numeric credit', { credit: 10 }, ['credit']],
      ['a count of 0', { count: 0 }, ['count']],
      ['a count of 1001', { count: 1001 }, ['count']],
      ['a fractional count', { count: 1.5 }, ['count']],
      ['a count as a string', { count: '3' }, ['count']],
      ['a past expiry', { expiresAt: inSeconds(-60) }, ['expiresAt']],
      ['a malformed expiry', { expiresAt: 'tomorrow' }, ['expiresAt']],
      ['an unknown field', { codes: ['MINE'] }, ['codes']],
    ])(
      'refuses a batch with %s with 400 naming the fields, storing nothing',
      async (_w, over, fields) => {
        const before = await t.sql.query(`SELECT count(*)::int AS n FROM redemption_codes`);
        const res = await t.http
          .post('/v1/admin/redemption-codes')
          .set(...adminHeaders(t))
          .send({ name: 'x', credit: '1.00', count: 2, ...over });
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual(fields);
        const after = await t.sql.query(`SELECT count(*)::int AS n FROM redemption_codes`);
        expect(after.rows[0].n).toBe(before.rows[0].n);
      },
    );

    it('disables the codes not yet redeemed; redeemed ones stay booked', async () => {
      const created = await batch({ count: 3, credit: '7.50' });
      const [used, unused] = created.codes as string[];
      const a = await newAccount();
      await redeem(t, a.consoleKey, used).expect(201);
      const res = await t.http
        .delete(`/v1/admin/redemption-codes/${created.batchId}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(res.body).toMatchObject({
        batchId: created.batchId,
        count: 3,
        redeemed: 1,
        disabled: 2,
        disabledAt: expect.stringMatching(ISO),
      });
      expectInvalid(await redeem(t, a.consoleKey, unused));
      expect(await balanceOf(t, a.consoleKey)).toBe('7.50');
      // Repeating it is harmless.
      const again = await t.http
        .delete(`/v1/admin/redemption-codes/${created.batchId}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(again.body).toMatchObject({
        redeemed: 1,
        disabled: 2,
        disabledAt: res.body.disabledAt,
      });
      const audit = await t.http
        .get('/v1/admin/audit-log')
        .query({ target: `redemption_batch:${created.batchId}` })
        .set(...adminHeaders(t))
        .expect(200);
      expect((audit.body.data as { action: string }[]).map((e) => e.action)).toEqual([
        'redemption_batch.disable',
        'redemption_batch.disable',
        'redemption_batch.create',
      ]);
      expect(audit.body.data[1]).toMatchObject({
        before: { disabled: 0, disabledAt: null },
        after: { disabled: 2, redeemed: 1 },
      });
      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
        expectErrorBody(
          await t.http.delete(`/v1/admin/redemption-codes/${id}`).set(...adminHeaders(t)),
          404,
          'not_found',
        );
      }
    });

    it('are for admins only', async () => {
      const a = await newAccount();
      for (const key of [a.consoleKey, t.gatewayKey]) {
        expectErrorBody(
          await t.http
            .post('/v1/admin/redemption-codes')
            .set(...bearer(key))
            .send({ name: 'x', credit: '1.00', count: 1 }),
          403,
          'forbidden',
        );
        expectErrorBody(
          await t.http.get('/v1/admin/redemption-codes').set(...bearer(key)),
          403,
          'forbidden',
        );
      }
    });
  });

  describe('redeeming', () => {
    it('books the credit once as a redemption entry and answers { credit, balance }', async () => {
      const [code] = (await batch({ credit: '12.3456789012' })).codes as string[];
      const a = await fundedAccount(t, `Funded ${randomBytes(3).toString('hex')}`, '1.00');
      const res = await redeem(t, a.consoleKey, code);
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ credit: '12.3456789012', balance: '13.3456789012' });
      expect(await balanceOf(t, a.consoleKey)).toBe('13.3456789012');
      const ledger = await t.http
        .get('/v1/me/ledger')
        .set(...bearer(a.consoleKey))
        .expect(200);
      expect(ledger.body.data[0]).toMatchObject({
        type: 'redemption',
        amount: '12.3456789012',
        balanceAfter: '13.3456789012',
      });
      expect(ledger.body.data[0].description).not.toContain(code);
      expect(await redemptionEntries(a.id)).toEqual(['12.3456789012']);
      expectInvalid(await redeem(t, a.consoleKey, code));
      const other = await newAccount();
      expectInvalid(await redeem(t, other.consoleKey, code));
      expect(await balanceOf(t, other.consoleKey)).toBe('0.00');
      await expectLedgerConsistent(t, a.id);
    });

    it('reads a code whatever its case, spaces or dashes', async () => {
      const codes = (await batch({ count: 2 })).codes as string[];
      const a = await newAccount();
      await redeem(t, a.consoleKey, codes[0].toLowerCase()).expect(201);
      await redeem(t, a.consoleKey, ` ${codes[1].replace(/-/g, ' ')} `).expect(201);
      expect(await balanceOf(t, a.consoleKey)).toBe('20.00');
    });

    it('answers unknown, used, expired and disabled codes with the same 400', async () => {
      const a = await newAccount();
      const [used] = (await batch()).codes as string[];
      await redeem(t, a.consoleKey, used).expect(201);
      const disabledBatch = await batch();
      await t.http
        .delete(`/v1/admin/redemption-codes/${disabledBatch.batchId}`)
        .set(...adminHeaders(t))
        .expect(200);
      const [expired] = (await batch({ expiresAt: inSeconds(1.5) })).codes as string[];
      await sleep(1600);
      const b = await newAccount();
      const answers = await Promise.all([
        redeem(t, b.consoleKey, 'AAAA-BBBB-CCCC-DDDD-EEEE'),
        redeem(t, b.consoleKey, 'not a code at all'),
        redeem(t, b.consoleKey, used),
        redeem(t, b.consoleKey, expired),
        redeem(t, b.consoleKey, (disabledBatch.codes as string[])[0]),
      ]);
      for (const res of answers) expectInvalid(res);
      expect(new Set(answers.map((r) => r.text)).size).toBe(1);
      expect(await balanceOf(t, b.consoleKey)).toBe('0.00');
      expect(await attempts(b.id)).toBe(5);
    });

    it.each([
      ['no code', {}, ['code']],
      ['a numeric code', { code: 42 }, ['code']],
      ['an empty code', { code: '' }, ['code']],
      ['a code over 64 characters', { code: 'A'.repeat(65) }, ['code']],
      ['an unknown field', { code: 'AAAA', accountId: 'x' }, ['accountId']],
    ])('refuses %s with 400 naming the field, recording no attempt', async (_w, body, fields) => {
      const a = await newAccount();
      const res = await t.http
        .post('/v1/me/redemptions')
        .set(...bearer(a.consoleKey))
        .send(body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(fields);
      expect(await attempts(a.id)).toBe(0);
    });

    it('answers 403 account_suspended for a suspended account and records no attempt', async () => {
      const [code] = (await batch()).codes as string[];
      const a = await newAccount();
      await t.http
        .patch(`/v1/admin/accounts/${a.id}`)
        .set(...adminHeaders(t))
        .send({ status: 'suspended' })
        .expect(200);
      expectErrorBody(await redeem(t, a.consoleKey, code), 403, 'account_suspended');
      expect(await attempts(a.id)).toBe(0);
      expect(await balanceOf(t, a.consoleKey)).toBe('0.00');
      // The code is still good for someone else.
      await redeem(t, (await newAccount()).consoleKey, code).expect(201);
    });

    it('is for customers only', async () => {
      const [code] = (await batch()).codes as string[];
      expectErrorBody(
        await t.http
          .post('/v1/me/redemptions')
          .set(...adminHeaders(t))
          .send({ code }),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http
          .post('/v1/me/redemptions')
          .set(...gatewayHeaders(t))
          .send({ code }),
        403,
        'forbidden',
      );
      expectErrorBody(await t.http.post('/v1/me/redemptions').send({ code }), 401, 'unauthorized');
    });

    // Protects the race of one code sent many times at once: the conditional UPDATE of the
    // code's redeemed_at admits one claim; the rest find it redeemed.
    it('credits one account once when 5 accounts send one code 50 times at once', async () => {
      const created = await batch({ count: 1, credit: '25.00' });
      const [code] = created.codes as string[];
      const accounts = await Promise.all(Array.from({ length: 5 }, () => newAccount()));
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => redeem(t, accounts[i % 5].consoleKey, code)),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      const refused = results.filter((r) => r.status !== 201);
      expect(refused).toHaveLength(49);
      for (const r of refused) expectInvalid(r);
      const balances = await Promise.all(accounts.map((a) => balanceOf(t, a.consoleKey)));
      expect(balances.filter((b) => b === '25.00')).toHaveLength(1);
      expect(balances.filter((b) => b === '0.00')).toHaveLength(4);
      const entries = await t.sql.query(
        `SELECT account_id FROM ledger_entries l JOIN redemption_codes c ON c.id::text = l.reference
         WHERE l.type = 'redemption' AND c.batch_id = $1`,
        [created.batchId],
      );
      expect(entries.rows).toHaveLength(1);
      for (const a of accounts) await expectLedgerConsistent(t, a.id);
      const listed = (await listBatches()).find((b) => b.batchId === created.batchId);
      expect(listed?.redeemed).toBe(1);
    });
  });

  describe('failed attempts', () => {
    it('answers 429 with Retry-After after 10 failed attempts in a minute, even for a good code', async () => {
      const [good] = (await batch()).codes as string[];
      const a = await newAccount();
      for (let i = 0; i < 10; i++) expectInvalid(await redeem(t, a.consoleKey, `WRONG-${i}`));
      const limited = await redeem(t, a.consoleKey, good);
      expectErrorBody(limited, 429, 'too_many_attempts');
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await balanceOf(t, a.consoleKey)).toBe('0.00');
      // Refused attempts are not counted again; other accounts are not limited.
      expect(await attempts(a.id)).toBe(10);
      await redeem(t, (await newAccount()).consoleKey, good).expect(201);
    });

    // Protects the race of many bad attempts at once: the count and the record run under the
    // account's lock, so no more than 10 failures are let through in a minute.
    it('lets no more than 10 of 30 concurrent bad attempts through', async () => {
      const a = await newAccount();
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => redeem(t, a.consoleKey, `BAD-${i}`)),
      );
      expect(results.filter((r) => r.status === 400)).toHaveLength(10);
      expect(results.filter((r) => r.status === 429)).toHaveLength(20);
      expect(await attempts(a.id)).toBe(10);
    });

    it('counts failures in PostgreSQL, so every instance sees the same count', async () => {
      const second = await createTestApp({}, t);
      try {
        const a = await newAccount();
        for (let i = 0; i < 5; i++) expectInvalid(await redeem(t, a.consoleKey, `X-${i}`));
        for (let i = 0; i < 5; i++) expectInvalid(await redeem(second, a.consoleKey, `Y-${i}`));
        expectErrorBody(await redeem(t, a.consoleKey, 'Z'), 429, 'too_many_attempts');
        expectErrorBody(await redeem(second, a.consoleKey, 'Z'), 429, 'too_many_attempts');
      } finally {
        await second.close();
      }
    });
  });
});
