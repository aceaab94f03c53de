import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes } from 'node:crypto';
import type { Response, Test } from 'supertest';
import {
  adminHeaders,
  balanceOf,
  createAccount,
  createStripeTestApp,
  createTopUp,
  deliverWebhook,
  errorFields,
  expectErrorBody,
  expectLedgerConsistent,
  gatewayHeaders,
  paidEvent,
  PendingTopUp,
  sessionEvent,
  topUpView,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { bearer, TestApp } from './helpers/test-app.js';

/*
 * Issue 10, item 3: the admins' review queue of top-ups. needs_review top-ups of every account
 * are listed by status; an admin resolves one by crediting it (once) or dismissing it; either
 * is final.
 */

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

describe('top-up review queue', () => {
  let stub: StripeStub;
  let t: TestApp;

  beforeAll(async () => {
    stub = await startStripeStub();
    t = await createStripeTestApp(stub, SECRET);
  });
  afterAll(async () => {
    await t?.close();
    await stub?.close();
  });

  const newAccount = () => createAccount(t, `Review ${randomBytes(3).toString('hex')}`);

  /** A top-up Stripe reported paid at the wrong amount: in review, nothing credited. */
  const inReview = async (credit = '100.00'): Promise<PendingTopUp> => {
    const c = await createTopUp(t, stub, await newAccount(), credit);
    const res = await deliverWebhook(t, paidEvent(c, { amount_total: 1 }), SECRET).expect(200);
    expect(res.body.outcome).toBe('needs_review');
    return c;
  };

  const resolve = (id: string, body: Record<string, unknown>): Test =>
    t.http
      .post(`/v1/admin/top-ups/${id}/resolve`)
      .set(...adminHeaders(t))
      .send(body);

  const list = (query: Record<string, string | number>): Test =>
    t.http
      .get('/v1/admin/top-ups')
      .query(query)
      .set(...adminHeaders(t));

  const topUpEntries = async (c: PendingTopUp): Promise<number> =>
    (
      await t.sql.query(`SELECT 1 FROM ledger_entries WHERE type = 'top_up' AND reference = $1`, [
        c.topUpId,
      ])
    ).rowCount ?? 0;

  describe('the queue', () => {
    it('lists top-ups by status across accounts, newest first, across pages', async () => {
      const reviewed = [await inReview(), await inReview(), await inReview()];
      const pending = await createTopUp(t, stub, await newAccount(), '10.00');
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: Response = await list(
          cursor
            ? { status: 'needs_review', limit: 2, cursor }
            : { status: 'needs_review', limit: 2 },
        ).expect(200);
        expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
        for (const x of res.body.data as { id: string; status: string; reviewReason: string }[]) {
          expect(x.status).toBe('needs_review');
          expect(x.reviewReason).toContain('paid 0.01 USD');
          seen.push(x.id);
        }
        cursor = res.body.nextCursor as string | null;
      } while (cursor !== null);
      expect(seen).toEqual(expect.arrayContaining(reviewed.map((c) => c.topUpId)));
      const mine = seen.filter((id) => reviewed.some((c) => c.topUpId === id));
      expect(mine).toEqual(reviewed.map((c) => c.topUpId).reverse());
      expect(seen).not.toContain(pending.topUpId);

      const pendingList = await list({ status: 'pending' }).expect(200);
      expect((pendingList.body.data as { id: string }[]).map((x) => x.id)).toContain(
        pending.topUpId,
      );
      const all = await list({ limit: 500 }).expect(200);
      const ids = (all.body.data as { id: string }[]).map((x) => x.id);
      expect(ids).toEqual(expect.arrayContaining([pending.topUpId, reviewed[0].topUpId]));
    });

    it('refuses an unknown status with 400 naming status, and non-admins with 403', async () => {
      const res = await list({ status: 'in_review' });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['status']);
      const account = await newAccount();
      expectErrorBody(
        await t.http.get('/v1/admin/top-ups').set(...bearer(account.consoleKey)),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http.get('/v1/admin/top-ups').set(...gatewayHeaders(t)),
        403,
        'forbidden',
      );
    });
  });

  describe('resolving', () => {
    it('credits a top-up in review once; the decision is final', async () => {
      const c = await inReview();
      const res = await resolve(c.topUpId, {
        action: 'credit',
        note: 'the customer paid the rest by bank transfer',
      }).expect(200);
      expect(res.body).toMatchObject({
        id: c.topUpId,
        status: 'paid',
        resolution: {
          action: 'credit',
          note: 'the customer paid the rest by bank transfer',
          resolvedAt: expect.any(String),
        },
      });
      expect(res.body.paidAt).toEqual(expect.any(String));
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await topUpEntries(c)).toBe(1);

      for (const action of ['credit', 'dismiss']) {
        expectErrorBody(await resolve(c.topUpId, { action, note: 'again' }), 409, 'conflict');
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      // The customer sees the decision, not the admin's note.
      const view = await topUpView(t, c);
      expect(view.resolution).toEqual({ action: 'credit', resolvedAt: expect.any(String) });
      // Recorded in the audit log once, with the admin key's name and the top-up before and after.
      const audit = await t.http
        .get('/v1/admin/audit-log')
        .query({ target: `top_up:${c.topUpId}` })
        .set(...adminHeaders(t))
        .expect(200);
      expect(audit.body.data).toHaveLength(1);
      expect(audit.body.data[0]).toMatchObject({
        actor: 'admin',
        action: 'top_up.credit',
        target: `top_up:${c.topUpId}`,
        before: { status: 'needs_review', resolution: null },
        after: { status: 'paid', resolution: { action: 'credit' } },
      });
      // Stripe's later events credit nothing more.
      const again = await deliverWebhook(t, paidEvent(c), SECRET).expect(200);
      expect(again.body.outcome).toBe('already_paid');
      expect(await topUpEntries(c)).toBe(1);
      await expectLedgerConsistent(t, c.accountId);
    });

    it('dismisses a top-up without credit; the decision is final, whatever Stripe says later', async () => {
      const c = await inReview();
      const res = await resolve(c.topUpId, { action: 'dismiss', note: 'refunded by hand' }).expect(
        200,
      );
      expect(res.body).toMatchObject({
        status: 'failed',
        paidAt: null,
        resolution: { action: 'dismiss', note: 'refunded by hand' },
      });
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expectErrorBody(await resolve(c.topUpId, { action: 'credit', note: 'x' }), 409, 'conflict');
      for (const event of [
        paidEvent(c),
        sessionEvent(c, 'checkout.session.async_payment_succeeded'),
      ]) {
        const later = await deliverWebhook(t, event, SECRET).expect(200);
        expect(later.body.outcome).toBe('already_resolved');
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpEntries(c)).toBe(0);
    });

    // Protects the race of two admins deciding at once: the top-up's row lock and the
    // conditional update let exactly one decision through.
    it('lets exactly one of 20 concurrent decisions through and credits at most once', async () => {
      const c = await inReview('50.00');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          resolve(c.topUpId, { action: i % 4 === 0 ? 'dismiss' : 'credit', note: `admin ${i}` }),
        ),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 409)).toHaveLength(19);
      const winner = results.find((r) => r.status === 200);
      const credited = winner?.body.resolution.action === 'credit';
      expect(await balanceOf(t, c.consoleKey)).toBe(credited ? '50.00' : '0.00');
      expect(await topUpEntries(c)).toBe(credited ? 1 : 0);
      await expectLedgerConsistent(t, c.accountId);
    });

    it('refuses to resolve a top-up that is not in review with 409, and an unknown one with 404', async () => {
      const pending = await createTopUp(t, stub, await newAccount(), '10.00');
      expectErrorBody(
        await resolve(pending.topUpId, { action: 'credit', note: 'x' }),
        409,
        'conflict',
      );
      const paid = await createTopUp(t, stub, await newAccount(), '10.00');
      await deliverWebhook(t, paidEvent(paid), SECRET).expect(200);
      expectErrorBody(
        await resolve(paid.topUpId, { action: 'dismiss', note: 'x' }),
        409,
        'conflict',
      );
      expect(await balanceOf(t, pending.consoleKey)).toBe('0.00');
      expect(await balanceOf(t, paid.consoleKey)).toBe('10.00');
      for (const id of [UNKNOWN, 'not-a-uuid']) {
        expectErrorBody(await resolve(id, { action: 'credit', note: 'x' }), 404, 'not_found');
      }
    });

    it.each([
      ['no action', { note: 'x' }, ['action']],
      ['an unknown action', { action: 'refund', note: 'x' }, ['action']],
      ['no note', { action: 'credit' }, ['note']],
      ['an empty note', { action: 'credit', note: '' }, ['note']],
      ['a note that is not a string', { action: 'dismiss', note: 42 }, ['note']],
      ['a note over 1000 characters', { action: 'dismiss', note: 'x'.repeat(1001) }, ['note']],
      ['an unknown field', { action: 'credit', note: 'x', amount: '5.00' }, ['amount']],
    ])(
      'refuses a resolution with %s with 400 naming the fields, changing nothing',
      async (_w, body, fields) => {
        const c = await inReview();
        const res = await resolve(c.topUpId, body);
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual(fields);
        expect((await topUpView(t, c)).status).toBe('needs_review');
        expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      },
    );

    it('is for admins only', async () => {
      const c = await inReview();
      expectErrorBody(
        await t.http
          .post(`/v1/admin/top-ups/${c.topUpId}/resolve`)
          .set(...bearer(c.consoleKey))
          .send({ action: 'credit', note: 'self-service' }),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http
          .post(`/v1/admin/top-ups/${c.topUpId}/resolve`)
          .send({ action: 'credit', note: 'x' }),
        401,
        'unauthorized',
      );
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('credits exactly the credit bought, whatever amount was paid', async () => {
      const c = await inReview('33.33');
      await resolve(c.topUpId, { action: 'credit', note: 'ok' }).expect(200);
      const row = await t.sql.query<{ amount: string }>(
        `SELECT amount::text AS amount FROM ledger_entries WHERE type = 'top_up' AND reference = $1`,
        [c.topUpId],
      );
      expect(new Decimal(row.rows[0].amount).toFixed()).toBe('33.33');
      expect(await balanceOf(t, c.consoleKey)).toBe('33.33');
    });
  });
});
