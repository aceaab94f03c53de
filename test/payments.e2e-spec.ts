import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import {
  adminHeaders,
  createAccount,
  createPromotion,
  createStripeTestApp,
  deliverWebhook,
  errorFields,
  expectErrorBody,
  gatewayHeaders,
  ISO,
  PUBLIC_BASE_URL,
  UUID,
} from './helpers/api.js';
import { startStripeStub, StripeStub, stripeEvent } from './helpers/stripe-stub.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';
const SECRET_KEY = 'sk_test_stub_0123456789';

const inDays = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString();

describe('payments', () => {
  let stub: StripeStub;
  let t: TestApp;

  beforeAll(async () => {
    stub = await startStripeStub();
    t = await createStripeTestApp(
      stub,
      `whsec_test_${randomBytes(16).toString('hex')}`,
      SECRET_KEY,
    );
  });
  afterAll(async () => {
    await t.close();
    await stub.close();
  });

  const newPayer = () => createAccount(t, `Payer ${randomBytes(3).toString('hex')}`);

  const deletePromotion = (id: string) =>
    t.http
      .delete(`/v1/admin/promotions/${id}`)
      .set(...adminHeaders(t))
      .expect(204);

  const topUp = (consoleKey: string, body: Record<string, unknown>) =>
    t.http
      .post('/v1/me/top-ups')
      .set(...bearer(consoleKey))
      .send(body);

  const topUpCount = async (accountId: string): Promise<number> =>
    (await t.sql.query(`SELECT 1 FROM top_ups WHERE account_id = $1`, [accountId])).rowCount ?? 0;

  describe('promotions', () => {
    it('are seeded with one active 15% promotion at rate 0.85', async () => {
      const res = await t.http
        .get('/v1/admin/promotions')
        .set(...adminHeaders(t))
        .expect(200);
      expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
      expect(res.body.data).toHaveLength(1);
      expect(res.body.data[0]).toEqual({
        id: expect.stringMatching(UUID),
        name: '15% off top-ups',
        rate: '0.85',
        startsAt: null,
        endsAt: null,
        minCredit: '0.00',
        active: true,
        createdAt: expect.stringMatching(ISO),
        updatedAt: expect.stringMatching(ISO),
      });
    });

    it('are created, read, patched and deleted', async () => {
      const startsAt = inDays(1);
      const endsAt = inDays(30);
      const created = await t.http
        .post('/v1/admin/promotions')
        .set(...adminHeaders(t))
        .send({
          name: 'Launch week',
          rate: '0.9',
          startsAt,
          endsAt,
          minCredit: '50',
          active: false,
        })
        .expect(201);
      expect(created.body).toMatchObject({
        name: 'Launch week',
        rate: '0.9',
        startsAt,
        endsAt,
        minCredit: '50.00',
        active: false,
      });
      const id = created.body.id as string;
      const got = await t.http
        .get(`/v1/admin/promotions/${id}`)
        .set(...adminHeaders(t))
        .expect(200);
      expect(got.body).toEqual(created.body);

      const patched = await t.http
        .patch(`/v1/admin/promotions/${id}`)
        .set(...adminHeaders(t))
        .send({ rate: '0.75', endsAt: null, active: true })
        .expect(200);
      expect(patched.body).toMatchObject({
        id,
        name: 'Launch week',
        rate: '0.75',
        startsAt,
        endsAt: null,
        minCredit: '50.00',
        active: true,
      });

      await deletePromotion(id);
      expectErrorBody(
        await t.http.get(`/v1/admin/promotions/${id}`).set(...adminHeaders(t)),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http.delete(`/v1/admin/promotions/${id}`).set(...adminHeaders(t)),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http
          .patch(`/v1/admin/promotions/${id}`)
          .set(...adminHeaders(t))
          .send({ rate: '0.5' }),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http.get('/v1/admin/promotions/not-a-uuid').set(...adminHeaders(t)),
        404,
        'not_found',
      );
    });

    it.each([
      ['a rate of 0', { name: 'X', rate: '0' }, ['rate']],
      ['a rate above 1', { name: 'X', rate: '1.01' }, ['rate']],
      ['a negative rate', { name: 'X', rate: '-0.5' }, ['rate']],
      ['a numeric rate', { name: 'X', rate: 0.85 }, ['rate']],
      ['a rate in exponent form', { name: 'X', rate: '8.5e-1' }, ['rate']],
      ['a missing rate and name', {}, ['name', 'rate']],
      ['a negative minCredit', { name: 'X', rate: '0.9', minCredit: '-1' }, ['minCredit']],
      ['a bad startsAt', { name: 'X', rate: '0.9', startsAt: 'tomorrow' }, ['startsAt']],
      [
        'endsAt before startsAt',
        { name: 'X', rate: '0.9', startsAt: inDays(2), endsAt: inDays(1) },
        ['endsAt'],
      ],
      [
        'endsAt equal to startsAt',
        { name: 'X', rate: '0.9', startsAt: inDays(2), endsAt: inDays(2) },
        ['endsAt'],
      ],
      ['a non-boolean active', { name: 'X', rate: '0.9', active: 'yes' }, ['active']],
      ['an unknown field', { name: 'X', rate: '0.9', id: UNKNOWN }, ['id']],
    ])('refuses creation with %s with 400 naming the fields', async (_what, body, fields) => {
      const before = await t.sql.query(`SELECT count(*)::int AS n FROM promotions`);
      const res = await t.http
        .post('/v1/admin/promotions')
        .set(...adminHeaders(t))
        .send(body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual([...fields].sort());
      const after = await t.sql.query(`SELECT count(*)::int AS n FROM promotions`);
      expect(after.rows[0].n).toBe(before.rows[0].n);
    });

    it('accepts a rate of exactly 1 and refuses patches that break the rules', async () => {
      const p = await createPromotion(t, {
        name: 'No discount',
        rate: '1',
        startsAt: inDays(10),
        active: false,
      });
      expect(p.rate).toBe('1.0');
      const cases: [Record<string, unknown>, string[]][] = [
        [{ endsAt: inDays(5) }, ['endsAt']], // before the stored startsAt
        [{ rate: '0' }, ['rate']],
        [{ rate: null }, ['rate']],
        [{ name: null }, ['name']],
        [{ active: null }, ['active']],
        [{ minCredit: 'abc' }, ['minCredit']],
      ];
      for (const [body, fields] of cases) {
        const res = await t.http
          .patch(`/v1/admin/promotions/${p.id}`)
          .set(...adminHeaders(t))
          .send(body);
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual(fields);
      }
      // Clearing startsAt makes any endsAt acceptable.
      const ok = await t.http
        .patch(`/v1/admin/promotions/${p.id}`)
        .set(...adminHeaders(t))
        .send({ startsAt: null, endsAt: inDays(5) })
        .expect(200);
      expect(ok.body.startsAt).toBeNull();
      await deletePromotion(p.id);
    });

    it('are for admins only', async () => {
      const { consoleKey } = await newPayer();
      expectErrorBody(
        await t.http.get('/v1/admin/promotions').set(...bearer(consoleKey)),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http.get('/v1/admin/promotions').set(...gatewayHeaders(t)),
        403,
        'forbidden',
      );
      expectErrorBody(await t.http.get('/v1/admin/promotions'), 401, 'unauthorized');
    });

    it('price a top-up with the lowest rate among those that apply now, honouring minCredit', async () => {
      const { consoleKey } = await newPayer();
      const big = await createPromotion(t, {
        name: 'Big spender',
        rate: '0.8',
        minCredit: '500.00',
      });
      const inactive = await createPromotion(t, { name: 'Paused', rate: '0.5', active: false });
      const future = await createPromotion(t, { name: 'Soon', rate: '0.5', startsAt: inDays(1) });
      const ended = await createPromotion(t, {
        name: 'Over',
        rate: '0.5',
        startsAt: inDays(-10),
        endsAt: new Date(Date.now() - 60_000).toISOString(),
      });
      try {
        const small = await topUp(consoleKey, { credit: '100.00' }).expect(201);
        expect(small.body).toMatchObject({
          price: '85.00',
          promotion: { name: '15% off top-ups', rate: '0.85' },
        });
        const edge = await topUp(consoleKey, { credit: '500.00' }).expect(201);
        expect(edge.body).toMatchObject({
          price: '400.00',
          promotion: { id: big.id, name: 'Big spender', rate: '0.8' },
        });
        const below = await topUp(consoleKey, { credit: '499.99' }).expect(201);
        expect(below.body).toMatchObject({ price: '424.99', promotion: { rate: '0.85' } }); // 424.9915
      } finally {
        for (const p of [big, inactive, future, ended]) await deletePromotion(p.id);
      }
    });

    it('leave past top-ups unchanged when deleted: the top-up keeps its snapshot', async () => {
      const { consoleKey } = await newPayer();
      const p = await createPromotion(t, { name: 'Flash', rate: '0.5' });
      const res = await topUp(consoleKey, { credit: '10.00' }).expect(201);
      expect(res.body).toMatchObject({
        price: '5.00',
        promotion: { id: p.id, name: 'Flash', rate: '0.5' },
      });
      await deletePromotion(p.id);
      const after = await t.http
        .get(`/v1/me/top-ups/${res.body.id}`)
        .set(...bearer(consoleKey))
        .expect(200);
      expect(after.body).toMatchObject({
        price: '5.00',
        promotion: { id: p.id, name: 'Flash', rate: '0.5' },
      });
    });
  });

  describe('top-ups', () => {
    it('creates a pending top-up with a Checkout Session priced at credit × 0.85', async () => {
      const { id: accountId, consoleKey } = await newPayer();
      const before = stub.requests.length;
      const res = await topUp(consoleKey, { credit: '100.00' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID),
        accountId,
        status: 'pending',
        credit: '100.00',
        price: '85.00',
        currency: 'USD',
        promotion: { id: expect.stringMatching(UUID), name: '15% off top-ups', rate: '0.85' },
        checkoutUrl: expect.stringMatching(/^https:\/\/checkout\.stripe\.test\/c\/pay\/cs_test_/),
        amountPaid: null,
        refundedCash: '0.00',
        refundedCredit: '0.00',
        disputedCredit: '0.00',
        reviewReason: null,
        resolution: null,
        createdAt: expect.stringMatching(ISO),
        updatedAt: expect.stringMatching(ISO),
        paidAt: null,
      });
      const id = res.body.id as string;

      const calls = stub.requests.slice(before);
      expect(calls).toHaveLength(1);
      const call = calls[0];
      expect(call.method).toBe('POST');
      expect(call.path).toBe('/v1/checkout/sessions');
      expect(call.headers['idempotency-key']).toBe(`topup-${id}`);
      expect(call.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
      expect(call.form).toMatchObject({
        mode: 'payment',
        'line_items[0][price_data][currency]': 'usd',
        'line_items[0][price_data][unit_amount]': '8500',
        'line_items[0][price_data][product_data][name]': 'Prepaid credit $100.00',
        'line_items[0][quantity]': '1',
        'metadata[topUpId]': id,
        'metadata[accountId]': accountId,
        'payment_intent_data[metadata][topUpId]': id,
        client_reference_id: id,
      });
      expect(
        call.form.success_url.startsWith(`${PUBLIC_BASE_URL}/top-ups/${id}?checkout=success`),
      ).toBe(true);
      expect(call.form.cancel_url).toBe(`${PUBLIC_BASE_URL}/top-ups/${id}?checkout=cancelled`);

      const session = stub.sessionFor(id);
      expect(res.body.checkoutUrl).toBe(session.url);
      const row = await t.sql.query(
        `SELECT status, credit::text, price::text, currency, checkout_session_id, promotion FROM top_ups WHERE id = $1`,
        [id],
      );
      expect(row.rows[0]).toMatchObject({
        status: 'pending',
        credit: '100.0000000000',
        price: '85.00',
        currency: 'usd',
        checkout_session_id: session.id,
        promotion: { name: '15% off top-ups', rate: '0.85' },
      });
      // Nothing is credited before Stripe says it was paid.
      expect(
        (
          await t.http
            .get('/v1/me')
            .set(...bearer(consoleKey))
            .expect(200)
        ).body.balance,
      ).toBe('0.00');
    });

    it.each([
      ['1', '1.00', 85], // smallest credit
      ['1.00', '1.00', 85],
      ['2.50', '2.50', 213], // 2.125 rounds half-up to 2.13 (half-even would give 2.12)
      ['33.33', '33.33', 2833], // 28.3305
      ['10000.00', '10000.00', 850000], // largest credit
    ])('prices a credit of %s at cents rounded half-up', async (credit, shown, cents) => {
      const { consoleKey } = await newPayer();
      const res = await topUp(consoleKey, { credit }).expect(201);
      expect(res.body.credit).toBe(shown);
      const dollars = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
      expect(res.body.price).toBe(dollars);
      const call = stub.requests.find((r) => r.form['metadata[topUpId]'] === res.body.id);
      expect(call?.form['line_items[0][price_data][unit_amount]']).toBe(String(cents));
    });

    it.each([
      ['a credit below 1.00', { credit: '0.99' }],
      ['a credit above 10000.00', { credit: '10000.01' }],
      ['a credit with 3 decimals', { credit: '1.005' }],
      ['a numeric credit', { credit: 100 }],
      ['a negative credit', { credit: '-5.00' }],
      ['a zero credit', { credit: '0' }],
      ['a non-numeric credit', { credit: 'abc' }],
      ['a credit in exponent form', { credit: '1e2' }],
      ['a missing credit', {}],
      ['a null credit', { credit: null }],
    ])('refuses %s with 400 naming credit, writing nothing', async (_what, body) => {
      const { id, consoleKey } = await newPayer();
      const before = stub.requests.length;
      const res = await topUp(consoleKey, body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['credit']);
      expect(await topUpCount(id)).toBe(0);
      expect(stub.requests.length).toBe(before);
    });

    it('refuses an unknown field with 400 naming it', async () => {
      const { consoleKey } = await newPayer();
      const res = await topUp(consoleKey, { credit: '10.00', price: '1.00' });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['price']);
    });

    it('refuses a price below the card minimum of 0.50 with 400 naming credit', async () => {
      const { id, consoleKey } = await newPayer();
      const p = await createPromotion(t, { name: 'Almost free', rate: '0.1' });
      try {
        const res = await topUp(consoleKey, { credit: '4.00' }); // 0.40
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual(['credit']);
        expect(await topUpCount(id)).toBe(0);
        expect((await topUp(consoleKey, { credit: '5.00' })).body.price).toBe('0.50');
      } finally {
        await deletePromotion(p.id);
      }
    });

    it('answers 503 and closes the top-up as failed when Stripe refuses, charging nothing', async () => {
      const { id: accountId, consoleKey } = await newPayer();
      stub.failWith(400);
      let res: Response;
      try {
        res = await topUp(consoleKey, { credit: '10.00' });
      } finally {
        stub.failWith(null);
      }
      expectErrorBody(res, 503, 'service_unavailable');
      expect(JSON.stringify(res.body)).not.toContain(SECRET_KEY);
      const rows = await t.sql.query(
        `SELECT status, checkout_session_id FROM top_ups WHERE account_id = $1`,
        [accountId],
      );
      expect(rows.rows).toEqual([{ status: 'failed', checkout_session_id: null }]);
      const list = await t.http
        .get('/v1/me/top-ups')
        .set(...bearer(consoleKey))
        .expect(200);
      expect(list.body.data).toHaveLength(1);
      expect(list.body.data[0]).toMatchObject({ status: 'failed', checkoutUrl: null });
      // The next attempt works.
      expect((await topUp(consoleKey, { credit: '10.00' })).status).toBe(201);
    });

    it('lists the customer’s own top-ups newest first, across pages', async () => {
      const { id: accountId, consoleKey } = await newPayer();
      const other = await newPayer();
      await topUp(other.consoleKey, { credit: '5.00' }).expect(201);
      const ids: string[] = [];
      for (const credit of ['10.00', '20.00', '30.00', '40.00', '50.00']) {
        ids.push((await topUp(consoleKey, { credit }).expect(201)).body.id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: Response = await t.http
          .get('/v1/me/top-ups')
          .query(cursor ? { limit: 2, cursor } : { limit: 2 })
          .set(...bearer(consoleKey))
          .expect(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        for (const tu of res.body.data as { id: string; accountId: string }[]) {
          expect(tu.accountId).toBe(accountId);
          seen.push(tu.id);
        }
        cursor = res.body.nextCursor as string | null;
      } while (cursor !== null);
      expect(seen).toEqual([...ids].reverse());

      const adminView = await t.http
        .get(`/v1/admin/accounts/${accountId}/top-ups`)
        .set(...adminHeaders(t))
        .expect(200);
      expect((adminView.body.data as { id: string }[]).map((x) => x.id)).toEqual(
        [...ids].reverse(),
      );
      expectErrorBody(
        await t.http.get(`/v1/admin/accounts/${UNKNOWN}/top-ups`).set(...adminHeaders(t)),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http
          .get('/v1/me/top-ups')
          .query({ cursor: 'garbage' })
          .set(...bearer(consoleKey)),
        400,
        'validation_failed',
      );
    });

    it('refuses another account’s top-up with 403 and an unknown one with 404', async () => {
      const owner = await newPayer();
      const intruder = await newPayer();
      const { body } = await topUp(owner.consoleKey, { credit: '10.00' }).expect(201);
      const res = await t.http.get(`/v1/me/top-ups/${body.id}`).set(...bearer(intruder.consoleKey));
      expectErrorBody(res, 403, 'forbidden');
      expect(JSON.stringify(res.body)).not.toContain(body.checkoutUrl);
      for (const id of [UNKNOWN, 'not-a-uuid']) {
        expectErrorBody(
          await t.http.get(`/v1/me/top-ups/${id}`).set(...bearer(owner.consoleKey)),
          404,
          'not_found',
        );
      }
      const own = await t.http
        .get(`/v1/me/top-ups/${body.id}`)
        .set(...bearer(owner.consoleKey))
        .expect(200);
      expect(own.body).toEqual(body);
    });

    it('are for customers only under /v1/me and admins only under /v1/admin', async () => {
      const { id, consoleKey } = await newPayer();
      expectErrorBody(
        await t.http
          .post('/v1/me/top-ups')
          .set(...adminHeaders(t))
          .send({ credit: '10.00' }),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http.get('/v1/me/top-ups').set(...gatewayHeaders(t)),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http.get(`/v1/admin/accounts/${id}/top-ups`).set(...bearer(consoleKey)),
        403,
        'forbidden',
      );
      expectErrorBody(
        await t.http.post('/v1/me/top-ups').send({ credit: '10.00' }),
        401,
        'unauthorized',
      );
    });
  });

  describe('OpenAPI', () => {
    it('documents every payments endpoint', async () => {
      const res = await t.http.get('/docs-json').expect(200);
      const paths = res.body.paths as Record<string, Record<string, unknown>>;
      expect(Object.keys(paths['/v1/admin/promotions']).sort()).toEqual(['get', 'post']);
      expect(Object.keys(paths['/v1/admin/promotions/{id}']).sort()).toEqual([
        'delete',
        'get',
        'patch',
      ]);
      expect(Object.keys(paths['/v1/me/top-ups']).sort()).toEqual(['get', 'post']);
      expect(Object.keys(paths['/v1/me/top-ups/{id}'])).toEqual(['get']);
      expect(Object.keys(paths['/v1/admin/accounts/{accountId}/top-ups'])).toEqual(['get']);
      expect(Object.keys(paths['/v1/stripe/webhook'])).toEqual(['post']);
      expect(Object.keys(paths['/v1/pricing/quote'])).toEqual(['get']);
      expect(Object.keys(paths['/v1/admin/top-ups'])).toEqual(['get']);
      expect(Object.keys(paths['/v1/admin/top-ups/{id}/resolve'])).toEqual(['post']);
      expect(Object.keys(paths['/v1/admin/redemption-codes']).sort()).toEqual(['get', 'post']);
      expect(Object.keys(paths['/v1/admin/redemption-codes/{batchId}'])).toEqual(['delete']);
      expect(Object.keys(paths['/v1/me/redemptions'])).toEqual(['post']);
    });
  });

  describe('with only a webhook secret', () => {
    const secret = `whsec_test_${randomBytes(16).toString('hex')}`;
    let hooksOnly: TestApp;
    beforeAll(async () => {
      hooksOnly = await createTestApp({
        STRIPE_SECRET_KEY: '',
        STRIPE_WEBHOOK_SECRET: secret,
        STRIPE_API_BASE: '',
      });
    });
    afterAll(async () => {
      await hooksOnly.close();
    });

    it('still verifies and records webhooks (no API key is needed for that)', async () => {
      const event = stripeEvent('customer.created', { id: 'cus_1', object: 'customer' });
      const res = await deliverWebhook(hooksOnly, event, secret).expect(200);
      expect(res.body).toEqual({ received: true, duplicate: false, outcome: 'ignored' });
      const acc = await createAccount(hooksOnly, 'Hooks only');
      expectErrorBody(
        await hooksOnly.http
          .post('/v1/me/top-ups')
          .set(...bearer(acc.consoleKey))
          .send({ credit: '10.00' }),
        503,
        'payments_not_configured',
      );
    });
  });

  describe('without Stripe keys', () => {
    let bare: TestApp;
    beforeAll(async () => {
      bare = await createTestApp({
        STRIPE_SECRET_KEY: '',
        STRIPE_WEBHOOK_SECRET: '',
        STRIPE_API_BASE: '',
      });
    });
    afterAll(async () => {
      await bare.close();
    });

    it('answers 503 payments_not_configured for a top-up and writes nothing, the rest still works', async () => {
      const acc = await createAccount(bare, 'No Stripe');
      const before = stub.requests.length;
      const res = await bare.http
        .post('/v1/me/top-ups')
        .set(...bearer(acc.consoleKey))
        .send({ credit: '100.00' });
      expectErrorBody(res, 503, 'payments_not_configured');
      const rows = await bare.sql.query(`SELECT 1 FROM top_ups`);
      expect(rows.rowCount).toBe(0);
      expect(stub.requests.length).toBe(before);

      await bare.http
        .get('/v1/me')
        .set(...bearer(acc.consoleKey))
        .expect(200);
      const list = await bare.http
        .get('/v1/me/top-ups')
        .set(...bearer(acc.consoleKey))
        .expect(200);
      expect(list.body).toEqual({ data: [], nextCursor: null });
      await bare.http
        .get('/v1/admin/promotions')
        .set(...adminHeaders(bare))
        .expect(200);
      const quote = await bare.http
        .get('/v1/pricing/quote')
        .query({ model: 'gpt-image-2-all' })
        .set(...gatewayHeaders(bare))
        .expect(200);
      expect(quote.body.cashPrice).toBe('0.0255');
      await bare.http.get('/health').expect(200);
    });

    it('answers 503 payments_not_configured on the webhook, whatever it carries', async () => {
      const res = await deliverWebhook(
        bare,
        stripeEvent('customer.created', { id: 'cus_1' }),
        'whsec_anything',
      );
      expectErrorBody(res, 503, 'payments_not_configured');
      expect((await bare.sql.query(`SELECT 1 FROM stripe_events`)).rowCount).toBe(0);
    });
  });
});
