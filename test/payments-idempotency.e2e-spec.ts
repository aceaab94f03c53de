import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  adminHeaders,
  createAccount,
  createStripeTestApp,
  deliverWebhook,
  errorFields,
  expectErrorBody,
  paidEvent,
  PendingTopUp,
  postTopUp,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { TestApp } from './helpers/test-app.js';

/*
 * Issue 10, item 4: POST /v1/me/top-ups takes an Idempotency-Key (stored in the database, the
 * semantics of admin adjustments), and an account has at most 5 pending top-ups, under any
 * concurrency.
 */

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

describe('top-up creation: idempotency and the pending limit', () => {
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

  const newAccount = () => createAccount(t, `Idem ${randomBytes(3).toString('hex')}`);

  const rows = async (accountId: string): Promise<{ id: string; status: string }[]> =>
    (
      await t.sql.query<{ id: string; status: string }>(
        `SELECT id, status FROM top_ups WHERE account_id = $1 ORDER BY created_at`,
        [accountId],
      )
    ).rows;

  const sessionsOf = (accountId: string) =>
    [...stub.sessions.values()].filter((s) => s.metadata.accountId === accountId);

  describe('Idempotency-Key', () => {
    it('answers the same top-up with 200 for the same key and body, and 409 for another body', async () => {
      const a = await newAccount();
      const key = randomUUID();
      const first = await postTopUp(t, a.consoleKey, { credit: '100.00' }, key);
      expect(first.status).toBe(201);
      const requestsBefore = stub.requests.length;
      for (const credit of ['100.00', '100', '100.0']) {
        const again = await postTopUp(t, a.consoleKey, { credit }, key);
        expect(again.status).toBe(200);
        expect(again.body).toEqual(first.body);
      }
      // The replays found the Checkout Session attached: Stripe was not asked again.
      expect(stub.requests.length).toBe(requestsBefore);
      const other = await postTopUp(t, a.consoleKey, { credit: '50.00' }, key);
      expectErrorBody(other, 409, 'idempotency_conflict');
      expect(await rows(a.id)).toHaveLength(1);
      expect(sessionsOf(a.id)).toHaveLength(1);

      // Keys are per account: another account's same key is another top-up.
      const b = await newAccount();
      const theirs = await postTopUp(t, b.consoleKey, { credit: '100.00' }, key);
      expect(theirs.status).toBe(201);
      expect(theirs.body.id).not.toBe(first.body.id);
      // No key: a new top-up each time, as before.
      const plain = await postTopUp(t, a.consoleKey, { credit: '100.00' });
      expect(plain.status).toBe(201);
      expect(plain.body.id).not.toBe(first.body.id);
    });

    it('keeps answering the same top-up after it was paid', async () => {
      const a = await newAccount();
      const key = randomUUID();
      const first = await postTopUp(t, a.consoleKey, { credit: '20.00' }, key).expect(201);
      const session = stub.sessionFor(first.body.id);
      const c: PendingTopUp = {
        accountId: a.id,
        consoleKey: a.consoleKey,
        topUpId: first.body.id,
        price: first.body.price,
        session,
        paymentIntent: `pi_test_${randomBytes(8).toString('hex')}`,
        chargeId: `ch_test_${randomBytes(8).toString('hex')}`,
      };
      await deliverWebhook(t, paidEvent(c), SECRET).expect(200);
      const again = await postTopUp(t, a.consoleKey, { credit: '20.00' }, key).expect(200);
      expect(again.body).toMatchObject({ id: first.body.id, status: 'paid' });
    });

    // Protects the race of a double click (or a retrying client): the per-account lock and the
    // unique (account_id, idempotency_key) index admit one top-up; the others replay it, and
    // Stripe's idempotency key makes any replay that asks for the session get the same one.
    it('makes one top-up and one Checkout Session from 20 concurrent creates with one key', async () => {
      const a = await newAccount();
      const key = `double-click-${randomUUID()}`;
      const results = await Promise.all(
        Array.from({ length: 20 }, () => postTopUp(t, a.consoleKey, { credit: '40.00' }, key)),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      expect(results.filter((r) => r.status === 200)).toHaveLength(19);
      const ids = new Set(results.map((r) => r.body.id as string));
      expect(ids.size).toBe(1);
      for (const r of results) {
        expect(r.body.checkoutUrl).toBe(results[0].body.checkoutUrl);
        expect(r.body.checkoutUrl).toEqual(expect.stringContaining('checkout.stripe.test'));
      }
      expect(await rows(a.id)).toHaveLength(1);
      expect(sessionsOf(a.id)).toHaveLength(1);
      const keyRow = await t.sql.query(
        `SELECT idempotency_key FROM top_ups WHERE account_id = $1`,
        [a.id],
      );
      expect(keyRow.rows).toEqual([{ idempotency_key: key }]);
    });

    it.each([
      ['empty', ''],
      ['too long', 'k'.repeat(256)],
      ['with a space', 'a b'],
    ])('refuses a %s key with 400 naming Idempotency-Key and stores nothing', async (_w, key) => {
      const a = await newAccount();
      const res = await postTopUp(t, a.consoleKey, { credit: '10.00' }, key);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['Idempotency-Key']);
      expect(await rows(a.id)).toEqual([]);
      expect(sessionsOf(a.id)).toEqual([]);
    });

    it('names both the key and the body when both are wrong', async () => {
      const a = await newAccount();
      const res = await postTopUp(t, a.consoleKey, { credit: 'ten' }, 'a b');
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['Idempotency-Key', 'credit']);
    });
  });

  describe('at most 5 pending top-ups', () => {
    it('refuses a sixth pending top-up with 409 too_many_pending, storing nothing', async () => {
      const a = await newAccount();
      const created = [];
      for (let i = 0; i < 5; i++) {
        created.push((await postTopUp(t, a.consoleKey, { credit: '10.00' }).expect(201)).body);
      }
      const sixth = await postTopUp(t, a.consoleKey, { credit: '10.00' });
      expectErrorBody(sixth, 409, 'too_many_pending');
      expect(await rows(a.id)).toHaveLength(5);
      expect(sessionsOf(a.id)).toHaveLength(5);
      // Paying one frees a place.
      const first = created[0] as { id: string; price: string };
      const c: PendingTopUp = {
        accountId: a.id,
        consoleKey: a.consoleKey,
        topUpId: first.id,
        price: first.price,
        session: stub.sessionFor(first.id),
        paymentIntent: `pi_test_${randomBytes(8).toString('hex')}`,
        chargeId: `ch_test_${randomBytes(8).toString('hex')}`,
      };
      await deliverWebhook(t, paidEvent(c), SECRET).expect(200);
      await postTopUp(t, a.consoleKey, { credit: '10.00' }).expect(201);
      expectErrorBody(
        await postTopUp(t, a.consoleKey, { credit: '10.00' }),
        409,
        'too_many_pending',
      );
    });

    it('still answers a replay of a known key when the account is at its limit', async () => {
      const a = await newAccount();
      const key = randomUUID();
      const first = await postTopUp(t, a.consoleKey, { credit: '10.00' }, key).expect(201);
      for (let i = 0; i < 4; i++) await postTopUp(t, a.consoleKey, { credit: '10.00' }).expect(201);
      const again = await postTopUp(t, a.consoleKey, { credit: '10.00' }, key).expect(200);
      expect(again.body.id).toBe(first.body.id);
    });

    // Protects the race of many creates at once: the count and the insert run under the
    // account's lock, so exactly 5 get through.
    it('lets exactly 5 of 20 concurrent creates through', async () => {
      const a = await newAccount();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          postTopUp(t, a.consoleKey, { credit: `${10 + i}.00` }, i % 2 === 0 ? randomUUID() : null),
        ),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(5);
      const refused = results.filter((r) => r.status === 409);
      expect(refused).toHaveLength(15);
      for (const r of refused) expect(r.body.error.code).toBe('too_many_pending');
      expect(await rows(a.id)).toHaveLength(5);
      expect(sessionsOf(a.id)).toHaveLength(5);
    });

    it('does not count top-ups of other accounts, nor closed ones', async () => {
      const a = await newAccount();
      const b = await newAccount();
      for (let i = 0; i < 5; i++) await postTopUp(t, a.consoleKey, { credit: '10.00' }).expect(201);
      await postTopUp(t, b.consoleKey, { credit: '10.00' }).expect(201);
      // Stripe failing: the top-up is stored as failed and does not hold a place.
      stub.failWith(500);
      try {
        for (let i = 0; i < 6; i++) {
          const res = await postTopUp(t, b.consoleKey, { credit: '10.00' });
          expect(res.status).toBe(503);
        }
      } finally {
        stub.failWith(null);
      }
      await postTopUp(t, b.consoleKey, { credit: '10.00' }).expect(201);
    });

    it('answers 403 account_suspended for a suspended account, storing nothing', async () => {
      const a = await newAccount();
      await t.http
        .patch(`/v1/admin/accounts/${a.id}`)
        .set(...adminHeaders(t))
        .send({ status: 'suspended' })
        .expect(200);
      expectErrorBody(
        await postTopUp(t, a.consoleKey, { credit: '10.00' }, randomUUID()),
        403,
        'account_suspended',
      );
      expect(await rows(a.id)).toEqual([]);
    });
  });
});
