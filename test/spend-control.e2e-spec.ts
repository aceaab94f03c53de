import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { reconcile } from '../src/statements/reconcile.js';
import {
  adminHeaders,
  Body,
  createAccount,
  createToken,
  credit,
  expectErrorBody,
  fundedAccount,
  gatewayHeaders,
  ISO,
  Json,
  postEvent,
  postEvents,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const D = (v: string): Decimal => new Decimal(v);
const rid = (tag: string): string => `${tag}-${randomUUID()}`;

describe('spend control', () => {
  let t: TestApp;

  const authorize = (body: Body) =>
    t.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(t))
      .send(body);
  const allow = async (body: Body): Promise<Json> => (await authorize(body).expect(200)).body;
  const me = async (consoleKey: string): Promise<Json> =>
    (
      await t.http
        .get('/v1/me')
        .set(...bearer(consoleKey))
        .expect(200)
    ).body;
  const myHolds = async (consoleKey: string): Promise<Json[]> =>
    (
      await t.http
        .get('/v1/me/holds?limit=500')
        .set(...bearer(consoleKey))
        .expect(200)
    ).body.data;
  const release = (requestId: string) =>
    t.http
      .post(`/v1/gateway/holds/${encodeURIComponent(requestId)}/release`)
      .set(...gatewayHeaders(t));
  const patchAccount = (id: string, body: Body) =>
    t.http
      .patch(`/v1/admin/accounts/${id}`)
      .set(...adminHeaders(t))
      .send(body);
  const ledgerOf = async (consoleKey: string): Promise<Json[]> =>
    (
      await t.http
        .get('/v1/me/ledger?limit=500')
        .set(...bearer(consoleKey))
        .expect(200)
    ).body.data;
  const holdRow = async (requestId: string) =>
    (await t.sql.query(`SELECT status, amount::text FROM holds WHERE request_id = $1`, [requestId]))
      .rows[0] as { status: string; amount: string } | undefined;

  /** A usage event for `requestId` that costs 0.03 on gpt-image-2-all (per request). */
  const flatEvent = (requestId: string, tokenId: string, extra: Body = {}): Body => ({
    requestId,
    tokenId,
    model: 'gpt-image-2-all',
    statusCode: 200,
    ...extra,
  });

  /** A gpt-image-2 event: 100 input text tokens and `output` output image tokens. */
  const tokensEvent = (requestId: string, tokenId: string, output: number): Body => ({
    requestId,
    tokenId,
    model: 'gpt-image-2',
    statusCode: 200,
    usage: { inputTokens: 100, outputTokens: output },
  });

  /** Every account's books and holds agree: balance = Σ ledger, held = Σ active holds. */
  const expectBooksReconcile = async (): Promise<void> => {
    const result = await reconcile(t.app.get(DataSource));
    expect(result.problems).toEqual([]);
  };

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('holds under concurrency', () => {
    // Protects the check-then-reserve race: each hold is one conditional UPDATE of the
    // account's held under its row lock, so concurrent authorizes cannot all see the same room.
    it.each([
      ['per_request', 'gpt-image-2-all', {}, 'default', '0.03'],
      ['per_image with n = 2', 'gpt-image-2-vip', { n: 2 }, 'default', '0.06'],
      ['per_image in the 1.2 group', 'gpt-image-2-vip', {}, 'image2Enterprise', '0.036'],
      [
        'tokens at the 1024x1024 high reference price',
        'gpt-image-2',
        { size: '1024x1024', quality: 'high' },
        'default',
        '0.211',
      ],
      ['tokens at the holdAmount without a size', 'gpt-image-2', {}, 'default', '0.25'],
    ])(
      '100 concurrent authorizes on a balance that covers 10 (%s) hold exactly 10',
      async (_what, model, extra, group, hold) => {
        const balance = D(hold).times(10).toFixed();
        const acc = await fundedAccount(t, `Ten holds ${model}`, balance);
        const token = await createToken(t, acc.id, { group });
        const ids = Array.from({ length: 100 }, (_, i) => rid(`c${i}`));
        const answers = await Promise.all(
          ids.map((requestId) => allow({ key: token.key, model, requestId, ...extra })),
        );
        const allowed = answers.filter((a) => a.allowed);
        expect(allowed).toHaveLength(10);
        for (const a of allowed) {
          expect(a.hold).toEqual({
            requestId: expect.any(String),
            amount: hold,
            expiresAt: expect.stringMatching(ISO),
          });
        }
        expect(new Set(answers.filter((a) => !a.allowed).map((a) => a.reason))).toEqual(
          new Set(['insufficient_balance']),
        );
        const view = await me(acc.consoleKey);
        expect(D(view.balance).eq(balance)).toBe(true);
        expect(D(view.held).eq(balance)).toBe(true);
        expect(D(view.available).isZero()).toBe(true);
        expect(await myHolds(acc.consoleKey)).toHaveLength(10);
        await expectBooksReconcile();
      },
    );

    it('holds against the token spend limit (spent + held) as well as the balance', async () => {
      const acc = await fundedAccount(t, 'Token limit', '100.00');
      const token = await createToken(t, acc.id, { spendLimit: '0.30' });
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          allow({ key: token.key, model: 'gpt-image-2-all', requestId: rid(`l${i}`) }),
        ),
      );
      expect(answers.filter((a) => a.allowed)).toHaveLength(10);
      expect(new Set(answers.filter((a) => !a.allowed).map((a) => a.reason))).toEqual(
        new Set(['spend_limit_reached']),
      );
      const tokens = (
        await t.http
          .get('/v1/me/tokens')
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).body.data as Json[];
      expect(tokens.find((x) => x.id === token.id)).toMatchObject({ held: '0.30', spent: '0.00' });
    });

    it('lets a postpaid account with a credit limit hold down to −creditLimit, no further', async () => {
      const acc = await createAccount(t, 'Postpaid');
      const res = await patchAccount(acc.id, { creditLimit: '0.30' }).expect(200);
      expect(res.body).toMatchObject({ creditLimit: '0.30', balance: '0.00', held: '0.00' });
      const token = await createToken(t, acc.id);
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          allow({ key: token.key, model: 'gpt-image-2-all', requestId: rid(`p${i}`) }),
        ),
      );
      expect(answers.filter((a) => a.allowed)).toHaveLength(10);
      expect(await me(acc.consoleKey)).toMatchObject({
        balance: '0.00',
        held: '0.30',
        available: '-0.30',
        creditLimit: '0.30',
      });
    });

    it('refuses a creditLimit that is negative or not a decimal string, naming the field', async () => {
      const acc = await createAccount(t, 'Bad limit');
      for (const creditLimit of ['-1', 'lots', 5, '1.123456789012']) {
        const res = await patchAccount(acc.id, { creditLimit });
        expectErrorBody(res, 400, 'validation_failed');
        expect(JSON.stringify(res.body.error.details)).toContain('creditLimit');
      }
      expect((await me(acc.consoleKey)).creditLimit).toBe('0.00');
    });

    it('answers a replayed authorize with the same hold and holds nothing more, even when replayed at once', async () => {
      const acc = await fundedAccount(t, 'Replay', '0.03');
      const token = await createToken(t, acc.id);
      const requestId = rid('replay');
      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          allow({ key: token.key, model: 'gpt-image-2-all', requestId }),
        ),
      );
      expect(answers.every((a) => a.allowed)).toBe(true);
      expect(new Set(answers.map((a) => JSON.stringify(a.hold))).size).toBe(1);
      expect(await me(acc.consoleKey)).toMatchObject({ held: '0.03', available: '0.00' });
      const again = await allow({ key: token.key, model: 'gpt-image-2-all', requestId });
      expect(again.hold).toEqual(answers[0].hold);
    });

    it('checks only, holding nothing, when authorize names no requestId', async () => {
      const acc = await fundedAccount(t, 'Check only', '0.05');
      const token = await createToken(t, acc.id);
      const a = await allow({ key: token.key, model: 'gpt-image-2-all' });
      expect(a).toMatchObject({ allowed: true, hold: null, balance: '0.05', available: '0.05' });
      expect(await myHolds(acc.consoleKey)).toEqual([]);
    });

    it('refuses a $0.01 balance every time for a $0.03 request', async () => {
      const acc = await fundedAccount(t, 'Penny', '0.01');
      const token = await createToken(t, acc.id);
      for (let i = 0; i < 50; i++) {
        const a = await allow({
          key: token.key,
          model: 'gpt-image-2-vip',
          requestId: rid(`penny${i}`),
        });
        expect(a).toEqual({ allowed: false, reason: 'insufficient_balance' });
      }
    });

    it('refuses authorize fields that are out of range, naming them', async () => {
      const acc = await fundedAccount(t, 'Bad authorize');
      const token = await createToken(t, acc.id);
      for (const [body, field] of [
        [{ n: 0 }, 'n'],
        [{ n: 101 }, 'n'],
        [{ n: '2' }, 'n'],
        [{ requestId: '' }, 'requestId'],
        [{ requestId: 'x'.repeat(201) }, 'requestId'],
        [{ size: 'a b' }, 'size'],
        [{ quality: 7 }, 'quality'],
      ] as [Body, string][]) {
        const res = await authorize({
          key: token.key,
          model: 'gpt-image-2',
          requestId: rid('bad'),
          ...body,
        });
        expectErrorBody(res, 400, 'validation_failed');
        expect((res.body.error.details as { field: string }[]).map((d) => d.field)).toContain(
          field,
        );
      }
      expect(await myHolds(acc.consoleKey)).toEqual([]);
    });
  });

  describe('settling', () => {
    it.each([
      ['below the hold', 7000, '0.2108'],
      ['above the hold, booked in full', 10000, '0.3008'],
    ])(
      'settles a hold with a charge %s in the usage transaction',
      async (_what, output, charge) => {
        const acc = await fundedAccount(t, 'Settle tokens', '1.00');
        const token = await createToken(t, acc.id);
        const requestId = rid('settle');
        const a = await allow({
          key: token.key,
          model: 'gpt-image-2',
          requestId,
          size: '1024x1024',
          quality: 'high',
        });
        expect(a.hold.amount).toBe('0.211');
        const ev = await postEvent(t, tokensEvent(requestId, token.id, output)).expect(201);
        expect(ev.body).toMatchObject({ outcome: 'charged', charge });
        expect(await me(acc.consoleKey)).toMatchObject({
          balance: D('1')
            .minus(charge)
            .toFixed(Math.max(2, D(charge).decimalPlaces())),
          held: '0.00',
        });
        expect(await holdRow(requestId)).toEqual({ status: 'settled', amount: '0.2110000000' });
        expect(await allow({ key: token.key, model: 'gpt-image-2', requestId })).toEqual({
          allowed: false,
          reason: 'request_settled',
        });
        await expectBooksReconcile();
      },
    );

    it('settles a hold at exactly its amount, in a batch as well', async () => {
      const acc = await fundedAccount(t, 'Settle batch', '1.00');
      const token = await createToken(t, acc.id);
      const ids = [rid('b1'), rid('b2'), rid('b3')];
      for (const requestId of ids)
        await allow({ key: token.key, model: 'gpt-image-2-all', requestId });
      expect((await me(acc.consoleKey)).held).toBe('0.09');
      const res = await postEvents(
        t,
        ids.map((id) => flatEvent(id, token.id)),
      ).expect(200);
      expect(res.body.results.map((r: Json) => r.outcome)).toEqual([
        'charged',
        'charged',
        'charged',
      ]);
      expect(await me(acc.consoleKey)).toMatchObject({
        balance: '0.91',
        held: '0.00',
        available: '0.91',
      });
      await expectBooksReconcile();
    });

    it('releases the hold of a skipped event and books nothing', async () => {
      const acc = await fundedAccount(t, 'Skip release', '1.00');
      const token = await createToken(t, acc.id);
      const requestId = rid('skip');
      await allow({ key: token.key, model: 'gpt-image-2-all', requestId });
      const ev = await postEvent(t, flatEvent(requestId, token.id, { statusCode: 500 })).expect(
        201,
      );
      expect(ev.body).toMatchObject({ outcome: 'skipped', reason: 'upstream_error', charge: '0' });
      expect(await me(acc.consoleKey)).toMatchObject({ balance: '1.00', held: '0.00' });
      expect((await holdRow(requestId))?.status).toBe('settled');
      expect((await ledgerOf(acc.consoleKey)).filter((e) => e.type === 'usage')).toEqual([]);
      expect(await allow({ key: token.key, model: 'gpt-image-2-all', requestId })).toEqual({
        allowed: false,
        reason: 'request_settled',
      });
    });

    it('books an event that had no hold as before, and refuses to hold its request afterwards', async () => {
      const acc = await fundedAccount(t, 'No hold', '1.00');
      const token = await createToken(t, acc.id);
      const requestId = rid('nohold');
      await postEvent(t, flatEvent(requestId, token.id)).expect(201);
      expect(await me(acc.consoleKey)).toMatchObject({ balance: '0.97', held: '0.00' });
      expect(await allow({ key: token.key, model: 'gpt-image-2-all', requestId })).toEqual({
        allowed: false,
        reason: 'request_settled',
      });
    });

    it('releases a hold the gateway abandons, idempotently, and answers 404 for an unknown one', async () => {
      const acc = await fundedAccount(t, 'Release', '1.00');
      const token = await createToken(t, acc.id);
      const requestId = rid('release');
      await allow({ key: token.key, model: 'gpt-image-2-vip', requestId, n: 3 });
      expect((await me(acc.consoleKey)).held).toBe('0.09');
      const first = await release(requestId).expect(200);
      expect(first.body).toEqual({ requestId, status: 'released' });
      expect((await release(requestId).expect(200)).body).toEqual({
        requestId,
        status: 'released',
      });
      expect(await me(acc.consoleKey)).toMatchObject({
        balance: '1.00',
        held: '0.00',
        available: '1.00',
      });
      expect(await myHolds(acc.consoleKey)).toEqual([]);
      expect(await allow({ key: token.key, model: 'gpt-image-2-vip', requestId })).toEqual({
        allowed: false,
        reason: 'request_settled',
      });
      // Usage that arrives anyway is booked: the work was done upstream.
      await postEvent(t, {
        requestId,
        tokenId: token.id,
        model: 'gpt-image-2-vip',
        statusCode: 200,
      }).expect(201);
      expect(await me(acc.consoleKey)).toMatchObject({ balance: '0.97', held: '0.00' });
      expectErrorBody(await release(rid('never-held')), 404, 'not_found');
      // A hold its usage settled answers so.
      const settledId = rid('settled');
      await allow({ key: token.key, model: 'gpt-image-2-all', requestId: settledId });
      await postEvent(t, flatEvent(settledId, token.id)).expect(201);
      expect((await release(settledId).expect(200)).body).toEqual({
        requestId: settledId,
        status: 'settled',
      });
      await expectBooksReconcile();
    });

    it('shows active holds to the customer and the admin, newest first, paged', async () => {
      const acc = await fundedAccount(t, 'Hold views', '1.00');
      const token = await createToken(t, acc.id);
      const ids = [rid('v1'), rid('v2'), rid('v3')];
      for (const requestId of ids)
        await allow({ key: token.key, model: 'gpt-image-2-all', requestId });
      const page1 = await t.http
        .get('/v1/me/holds?limit=2')
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expect(page1.body.data.map((h: Json) => h.requestId)).toEqual([ids[2], ids[1]]);
      expect(page1.body.data[0]).toEqual({
        requestId: ids[2],
        tokenId: token.id,
        model: 'gpt-image-2-all',
        amount: '0.03',
        createdAt: expect.stringMatching(ISO),
        expiresAt: expect.stringMatching(ISO),
      });
      const page2 = await t.http
        .get(`/v1/me/holds?limit=2&cursor=${page1.body.nextCursor}`)
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expect(page2.body).toEqual({
        data: [expect.objectContaining({ requestId: ids[0] })],
        nextCursor: null,
      });
      const admin = await t.http
        .get(`/v1/admin/accounts/${acc.id}/holds`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(admin.body.data.map((h: Json) => h.requestId)).toEqual([...ids].reverse());
      const adminAccount = await t.http
        .get(`/v1/admin/accounts/${acc.id}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(adminAccount.body).toMatchObject({
        balance: '1.00',
        held: '0.09',
        available: '0.91',
        creditLimit: '0.00',
      });
      await t.http
        .get(`/v1/admin/accounts/${acc.id}/holds`)
        .set(...bearer(acc.consoleKey))
        .expect(403);
      await t.http
        .get(`/v1/me/holds`)
        .set(...gatewayHeaders(t))
        .expect(403);
    });

    // Protects the interleaving of holds and bookings on one account: both take the account's
    // row lock, so held and balance stay exact whatever the order.
    it('keeps balance = Σ ledger and held = Σ active holds on a hot account with authorizes and usage interleaved', async () => {
      const acc = await fundedAccount(t, 'Hot', '3.00');
      const token = await createToken(t, acc.id);
      const work = Array.from({ length: 150 }, (_, i) => async () => {
        const requestId = rid(`hot${i}`);
        const a = await allow({ key: token.key, model: 'gpt-image-2-all', requestId });
        if (!a.allowed) return a.reason as string;
        if (i % 7 === 0) await release(requestId).expect(200);
        else if (i % 11 === 0) return 'left held';
        else
          await postEvent(
            t,
            flatEvent(requestId, token.id, { statusCode: i % 5 === 0 ? 500 : 200 }),
          ).expect(201);
        return 'done';
      });
      const results: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < work.length) results.push(await work[next++]());
        }),
      );
      expect(results.filter((r) => r === 'done').length).toBeGreaterThan(50);
      await expectBooksReconcile();
      const view = await me(acc.consoleKey);
      const active = await myHolds(acc.consoleKey);
      const activeSum = active.reduce((s: Decimal, h) => s.plus(h.amount as string), D('0'));
      expect(D(view.held).eq(activeSum)).toBe(true);
      expect(D(view.available).gte(0)).toBe(true);
    });
  });

  describe('the overspend probe', () => {
    it('allows at most what a $1.00 balance covers, and the final balance is no lower than the charges exceed their holds', async () => {
      for (const [model, extra, expected] of [
        ['gpt-image-2-vip', {}, 33],
        ['gpt-image-2', {}, 4],
      ] as [string, Body, number][]) {
        const acc = await fundedAccount(t, `Probe ${model}`, '1.00');
        const token = await createToken(t, acc.id, { spendLimit: '1.00' });
        const ids = Array.from({ length: 100 }, (_, i) => rid(`probe${i}`));
        const answers = await Promise.all(
          ids.map((requestId) => allow({ key: token.key, model, requestId, ...extra })),
        );
        const allowed = ids.filter((_, i) => answers[i].allowed);
        expect(allowed).toHaveLength(expected);
        const events = allowed.map((id) =>
          model === 'gpt-image-2'
            ? tokensEvent(id, token.id, 7000)
            : { requestId: id, tokenId: token.id, model, statusCode: 200 },
        );
        await postEvents(t, events).expect(200);
        const view = await me(acc.consoleKey);
        expect(D(view.held).isZero()).toBe(true);
        expect(D(view.balance).gte(0)).toBe(true);
      }
      await expectBooksReconcile();
    });
  });

  describe('review of outsized charges', () => {
    const absurd = (requestId: string, tokenId: string): Body => ({
      requestId,
      tokenId,
      model: 'gpt-image-2',
      statusCode: 200,
      usage: { inputTokens: 1_000_000_000_000, outputTokens: 1_000_000_000_000 },
    });
    const approve = (requestId: string) =>
      t.http.post(`/v1/admin/usage-reviews/${requestId}/approve`).set(...adminHeaders(t));
    const voidIt = (requestId: string) =>
      t.http.post(`/v1/admin/usage-reviews/${requestId}/void`).set(...adminHeaders(t));

    it('stores an event above reviewAbove as review, books nothing and releases its hold', async () => {
      const acc = await fundedAccount(t, 'Absurd', '0.01');
      await patchAccount(acc.id, { creditLimit: '1.00' }).expect(200);
      const token = await createToken(t, acc.id);
      const requestId = rid('absurd');
      await allow({ key: token.key, model: 'gpt-image-2', requestId });
      const res = await postEvent(t, absurd(requestId, token.id)).expect(201);
      expect(res.body).toMatchObject({
        outcome: 'review',
        reason: 'above_review_limit',
        charge: '0',
      });
      expect(await me(acc.consoleKey)).toMatchObject({ balance: '0.01', held: '0.00' });
      expect((await holdRow(requestId))?.status).toBe('settled');
      const usage = await t.http
        .get('/v1/me/usage')
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expect(usage.body.data[0]).toMatchObject({
        requestId,
        outcome: 'review',
        reason: 'above_review_limit',
        charge: '0',
      });
      const list = await t.http
        .get('/v1/admin/usage-reviews?limit=500')
        .set(...adminHeaders(t))
        .expect(200);
      expect(list.body.data.find((r: Json) => r.requestId === requestId)).toMatchObject({
        accountId: acc.id,
        outcome: 'review',
        charge: '38000000',
        reviewedAt: null,
      });
      const period = new Date().toISOString().slice(0, 7);
      const st = await t.http
        .get(`/v1/me/statements/${period}`)
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expect(st.body.usage).toMatchObject({ requests: 1, charged: 0, review: 1, charge: '0.00' });
      expect(st.body.closingBalance).toBe('0.01');
      const csv = await t.http
        .get('/v1/me/usage/export')
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expect(csv.text).toContain(`${requestId},`);
      expect(csv.text).toMatch(/,review,above_review_limit,0,/);
    });

    // Protects the decide-once race: the event row's outcome is the condition of the UPDATE.
    it('approves once under concurrent approves and voids: one 200, the rest 409, one ledger entry dated at approval', async () => {
      const acc = await fundedAccount(t, 'Approve race', '10.00');
      const token = await createToken(t, acc.id);
      const requestId = rid('approve');
      await postEvent(t, tokensEvent(requestId, token.id, 200_000)).expect(201); // 6.0008 > 5.00
      const before = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2 === 0 ? approve(requestId) : voidIt(requestId),
        ),
      );
      const ok = answers.filter((r) => r.status === 200);
      expect(ok).toHaveLength(1);
      for (const r of answers.filter((x) => x.status !== 200)) expectErrorBody(r, 409, 'conflict');
      const won = ok[0].body as Json;
      const entries = (await ledgerOf(acc.consoleKey)).filter((e) => e.type === 'usage');
      if (won.outcome === 'charged') {
        expect(won.charge).toBe('6.0008');
        expect(entries).toHaveLength(1);
        expect(entries[0]).toMatchObject({ amount: '-6.0008', reference: requestId });
        expect(Date.parse(entries[0].createdAt as string)).toBeGreaterThanOrEqual(before - 1000);
        expect((await me(acc.consoleKey)).balance).toBe('3.9992');
      } else {
        expect(won.outcome).toBe('voided');
        expect(entries).toEqual([]);
        expect((await me(acc.consoleKey)).balance).toBe('10.00');
      }
      expectErrorBody(await approve(requestId), 409, 'conflict');
      expectErrorBody(await voidIt(requestId), 409, 'conflict');
      await expectBooksReconcile();
    });

    it('books an approved review in the statement, usage and summary; a voided one never', async () => {
      const acc = await fundedAccount(t, 'Decided', '20.00');
      const token = await createToken(t, acc.id);
      const approved = rid('appr');
      const voided = rid('void');
      await postEvent(t, tokensEvent(approved, token.id, 200_000)).expect(201);
      await postEvent(t, tokensEvent(voided, token.id, 200_000)).expect(201);
      expect((await approve(approved).expect(200)).body).toMatchObject({
        outcome: 'charged',
        reviewedAt: expect.stringMatching(ISO),
      });
      expect((await voidIt(voided).expect(200)).body).toMatchObject({ outcome: 'voided' });
      const usage = (
        await t.http
          .get('/v1/me/usage')
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).body.data as Json[];
      expect(usage.find((u) => u.requestId === approved)).toMatchObject({
        outcome: 'charged',
        charge: '6.0008',
      });
      expect(usage.find((u) => u.requestId === voided)).toMatchObject({
        outcome: 'voided',
        charge: '0',
      });
      const period = new Date().toISOString().slice(0, 7);
      const st = (
        await t.http
          .get(`/v1/me/statements/${period}`)
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).body;
      expect(st.usage).toMatchObject({ requests: 2, charged: 1, review: 2, charge: '6.0008' });
      expect(st.closingBalance).toBe('13.9992');
      expect(D(st.openingBalance).plus(st.adjustments).minus(st.usage.charge).toFixed()).toBe(
        D(st.closingBalance).toFixed(),
      );
      const today = new Date().toISOString().slice(0, 10);
      const sum = (
        await t.http
          .get(`/v1/me/usage/summary?from=${today}`)
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).body;
      expect(sum.totals).toMatchObject({ requests: 2, charged: 1, review: 2, charge: '6.0008' });
      // A range that starts mid-day is counted from the events themselves: the same figures.
      const midday = new Date(Date.now() - 3_600_000).toISOString();
      const partial = (
        await t.http
          .get(`/v1/me/usage/summary?from=${midday}`)
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).body;
      expect(partial.totals).toMatchObject({
        requests: 2,
        charged: 1,
        review: 2,
        charge: '6.0008',
      });
      const reviews = (
        await t.http
          .get('/v1/admin/usage-reviews?limit=500')
          .set(...adminHeaders(t))
          .expect(200)
      ).body.data as Json[];
      expect(reviews.map((r) => r.requestId)).not.toContain(approved);
      expect(reviews.map((r) => r.requestId)).not.toContain(voided);
      await expectBooksReconcile();
    });

    it('answers 404 for a request that never went to review', async () => {
      const acc = await fundedAccount(t, 'Not review', '1.00');
      const token = await createToken(t, acc.id);
      const requestId = rid('plain');
      await postEvent(t, flatEvent(requestId, token.id)).expect(201);
      expectErrorBody(await approve(requestId), 404, 'not_found');
      expectErrorBody(await voidIt(rid('unknown')), 404, 'not_found');
    });

    it('sets reviewAbove and holdAmount with a price, carries them to the next version, and shows them', async () => {
      const model = `review-model-${randomUUID().slice(0, 8)}`;
      const put = (body: Body) =>
        t.http
          .put(`/v1/admin/models/${model}`)
          .set(...adminHeaders(t))
          .send(body);
      const first = await put({ mode: 'per_image', perImage: '0.02', reviewAbove: '1.00' });
      expect([200, 201]).toContain(first.status);
      expect(first.body).toMatchObject({ reviewAbove: '1' });
      expect(first.body.holdAmount).toBeUndefined();
      const second = await put({ mode: 'per_image', perImage: '0.04' });
      expect(second.body).toMatchObject({ version: 2, reviewAbove: '1' });
      const third = await put({ mode: 'per_image', perImage: '0.04', reviewAbove: null });
      expect(third.body).toMatchObject({ version: 3, reviewAbove: null });
      const tokens = await put({
        mode: 'tokens',
        inputText: '1',
        inputImage: '1',
        cachedInput: '1',
        outputText: '1',
        outputImage: '1',
        partialImageOutputTokens: 0,
        holdAmount: '0.5',
      });
      expect(tokens.body).toMatchObject({ version: 4, holdAmount: '0.5' });
      const bad = await put({ mode: 'per_image', perImage: '0.04', holdAmount: '0.5' });
      expectErrorBody(bad, 400, 'validation_failed');
      expect(JSON.stringify(bad.body)).toContain('holdAmount');
      const seeded = (
        await t.http
          .get('/v1/models')
          .set(...adminHeaders(t))
          .expect(200)
      ).body.data as Json[];
      expect(seeded.find((m) => m.model === 'gpt-image-2')).toMatchObject({
        reviewAbove: '5',
        holdAmount: '0.25',
      });
      expect(seeded.find((m) => m.model === 'gpt-image-2-vip')).toMatchObject({ reviewAbove: '5' });
    });
  });

  describe('guards', () => {
    const createMine = (consoleKey: string, body: Body) =>
      t.http
        .post('/v1/me/tokens')
        .set(...bearer(consoleKey))
        .send({ name: 'mine', ...body });
    const patchMine = (consoleKey: string, id: string, body: Body) =>
      t.http
        .patch(`/v1/me/tokens/${id}`)
        .set(...bearer(consoleKey))
        .send(body);

    it('makes a group an admin creates without selectable unselectable for customers', async () => {
      const name = `cheap_${randomUUID().slice(0, 8)}`;
      const g = await t.http
        .post('/v1/admin/groups')
        .set(...adminHeaders(t))
        .send({ name, ratio: '0.1' })
        .expect(201);
      expect(g.body.selectable).toBe(false);
      const acc = await fundedAccount(t, 'Group shopper');
      const created = await createMine(acc.consoleKey, { group: name });
      expectErrorBody(created, 400, 'validation_failed');
      const mine = await createMine(acc.consoleKey, {}).expect(201);
      expectErrorBody(
        await patchMine(acc.consoleKey, mine.body.id, { group: name }),
        400,
        'validation_failed',
      );
    });

    it.each([
      [
        'spendLimit',
        { spendLimit: '10.00' },
        { spendLimit: '5.00' },
        [{ spendLimit: '20.00' }, { spendLimit: null }],
      ],
      [
        'expiresAt',
        { expiresAt: new Date(Date.now() + 48 * 3600_000).toISOString() },
        { expiresAt: new Date(Date.now() + 24 * 3600_000).toISOString() },
        [{ expiresAt: new Date(Date.now() + 96 * 3600_000).toISOString() }, { expiresAt: null }],
      ],
      [
        'allowedModels',
        { allowedModels: ['gpt-image-2', 'gpt-image-2-all'] },
        { allowedModels: ['gpt-image-2-all'] },
        [{ allowedModels: ['gpt-image-2-all', 'gpt-image-2-vip'] }, { allowedModels: null }],
      ],
      ['group', { group: 'image2Enterprise' }, { name: 'renamed' }, [{ group: 'default' }]],
    ])(
      'lets the customer tighten an admin-set %s but not loosen or remove it (403 locked_by_admin)',
      async (field, adminSet, tighter, looser) => {
        const acc = await fundedAccount(t, `Locked ${field}`);
        const token = await createToken(t, acc.id, adminSet);
        await patchMine(acc.consoleKey, token.id, tighter).expect(200);
        for (const body of looser) {
          const res = await patchMine(acc.consoleKey, token.id, body);
          expectErrorBody(res, 403, 'locked_by_admin');
          expect((res.body.error.details as { field: string }[]).map((d) => d.field)).toEqual([
            field,
          ]);
        }
        const after = (
          await t.http
            .get('/v1/me/tokens')
            .set(...bearer(acc.consoleKey))
            .expect(200)
        ).body.data[0];
        for (const [k, v] of Object.entries(tighter)) {
          if (k === 'expiresAt') expect(Date.parse(after[k])).toBe(Date.parse(v as string));
          else expect(after[k]).toEqual(v);
        }
      },
    );

    it('lets the customer relax a tightened limit back up to what the admin set', async () => {
      const acc = await fundedAccount(t, 'Relax');
      const token = await createToken(t, acc.id, { spendLimit: '10.00' });
      await patchMine(acc.consoleKey, token.id, { spendLimit: '2.00' }).expect(200);
      await patchMine(acc.consoleKey, token.id, { spendLimit: '10.00' }).expect(200);
    });

    it('lets the customer loosen limits the customer set', async () => {
      const acc = await fundedAccount(t, 'Own limits');
      const mine = await createMine(acc.consoleKey, {
        spendLimit: '1.00',
        allowedModels: ['gpt-image-2'],
      }).expect(201);
      const res = await patchMine(acc.consoleKey, mine.body.id, {
        spendLimit: null,
        allowedModels: null,
      }).expect(200);
      expect(res.body).toMatchObject({ spendLimit: null, allowedModels: null });
    });

    it('never revives an expired token through a customer call', async () => {
      const acc = await fundedAccount(t, 'Expired');
      const mine = await createMine(acc.consoleKey, {
        expiresAt: new Date(Date.now() + 1500).toISOString(),
      }).expect(201);
      await new Promise((r) => setTimeout(r, 1700));
      for (const body of [
        { expiresAt: null },
        { expiresAt: new Date(Date.now() + 3600_000).toISOString() },
        { name: 'again' },
      ]) {
        expectErrorBody(await patchMine(acc.consoleKey, mine.body.id, body), 409, 'conflict');
      }
      expect(
        await allow({ key: mine.body.key, model: 'gpt-image-2-all', requestId: rid('exp') }),
      ).toEqual({
        allowed: false,
        reason: 'expired',
      });
    });

    it('never revives a revoked token through a customer call', async () => {
      const acc = await fundedAccount(t, 'Revoked');
      const mine = await createMine(acc.consoleKey, {}).expect(201);
      await t.http
        .delete(`/v1/me/tokens/${mine.body.id}`)
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expectErrorBody(
        await patchMine(acc.consoleKey, mine.body.id, { name: 'back' }),
        409,
        'conflict',
      );
      expect((await allow({ key: mine.body.key, model: 'gpt-image-2-all' })).reason).toBe(
        'revoked',
      );
    });

    it('makes a suspended account read-only: token changes and top-ups answer 403 account_suspended', async () => {
      const acc = await fundedAccount(t, 'Suspended');
      const mine = await createMine(acc.consoleKey, {}).expect(201);
      await patchAccount(acc.id, { status: 'suspended' }).expect(200);
      const key = acc.consoleKey;
      expectErrorBody(await createMine(key, {}), 403, 'account_suspended');
      expectErrorBody(await patchMine(key, mine.body.id, { name: 'x' }), 403, 'account_suspended');
      expectErrorBody(
        await t.http.delete(`/v1/me/tokens/${mine.body.id}`).set(...bearer(key)),
        403,
        'account_suspended',
      );
      expectErrorBody(
        await t.http
          .post('/v1/me/top-ups')
          .set(...bearer(key))
          .send({ credit: '10.00' }),
        403,
        'account_suspended',
      );
      // Reads still work, and the gateway is refused.
      await t.http
        .get('/v1/me/tokens')
        .set(...bearer(key))
        .expect(200);
      expect((await me(key)).status).toBe('suspended');
      expect(
        (await allow({ key: mine.body.key, model: 'gpt-image-2-all', requestId: rid('susp') }))
          .reason,
      ).toBe('account_suspended');
      const tokens = (
        await t.http
          .get('/v1/me/tokens')
          .set(...bearer(key))
          .expect(200)
      ).body.data as Json[];
      expect(tokens.find((x) => x.id === mine.body.id)?.status).toBe('active');
      // An admin can still act on it.
      await credit(t, acc.id, '1.00');
    });
  });
});
