import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { signed, startStripeStub, StripeStub, stripeEvent } from './helpers/stripe-stub.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;
const D = (v: Decimal.Value): Decimal => new Decimal(v);

/** Top-ups credited by the webhook and a refund, as they reach a statement. */
describe('statements with top-ups and refunds', () => {
  let stub: StripeStub;
  let t: TestApp;

  beforeAll(async () => {
    stub = await startStripeStub();
    t = await createTestApp({
      STRIPE_SECRET_KEY: 'sk_test_stub_0123456789',
      STRIPE_WEBHOOK_SECRET: SECRET,
      STRIPE_API_BASE: stub.url,
      PUBLIC_BASE_URL: 'https://console.example.test',
    });
  });
  afterAll(async () => {
    await t.close();
    await stub.close();
  });

  const deliver = async (event: Record<string, unknown>): Promise<string> => {
    const { payload, header } = signed(event, SECRET);
    const res = await t.http
      .post('/v1/stripe/webhook')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', header)
      .send(payload)
      .expect(200);
    return res.body.outcome as string;
  };

  /** Creates a top-up through the API and pays it through the webhook; returns what refunds need. */
  const paidTopUp = async (consoleKey: string, accountId: string, credit: string) => {
    const res = await t.http
      .post('/v1/me/top-ups')
      .set(...bearer(consoleKey))
      .send({ credit })
      .expect(201);
    const session = stub.sessionFor(res.body.id);
    const paymentIntent = `pi_test_${randomBytes(8).toString('hex')}`;
    const outcome = await deliver(
      stripeEvent('checkout.session.completed', {
        ...session,
        status: 'complete',
        payment_status: 'paid',
        payment_intent: paymentIntent,
      }),
    );
    expect(outcome).toBe('credited');
    return {
      topUpId: res.body.id as string,
      price: res.body.price as string,
      amountTotal: session.amount_total,
      paymentIntent,
      chargeId: `ch_test_${randomBytes(8).toString('hex')}`,
      accountId,
    };
  };

  it('shows top-up credit, the cash paid and refunds, and reconciles to the balance', async () => {
    const acc = await t.http
      .post('/v1/admin/accounts')
      .set(...bearer(t.adminKey))
      .send({ name: 'Pays by card' })
      .expect(201);
    const { id: accountId, consoleKey } = acc.body as { id: string; consoleKey: string };
    const token = await t.http
      .post(`/v1/admin/accounts/${accountId}/tokens`)
      .set(...bearer(t.adminKey))
      .send({ name: 'card' })
      .expect(201);

    const big = await paidTopUp(consoleKey, accountId, '100.00');
    const small = await paidTopUp(consoleKey, accountId, '20.00');
    const usage = await t.http
      .post('/v1/usage-events/batch')
      .set(...bearer(t.gatewayKey))
      .send({
        events: [
          {
            requestId: `req_${randomUUID()}`,
            tokenId: token.body.id,
            model: 'gpt-image-2',
            statusCode: 200,
            usage: { inputTokens: 89, outputTokens: 1145 },
          },
          {
            requestId: `req_${randomUUID()}`,
            tokenId: token.body.id,
            model: 'gpt-image-2-all',
            statusCode: 200,
          },
        ],
      })
      .expect(200);
    const charge = (usage.body.results as { charge: string }[]).reduce(
      (s, r) => s.plus(r.charge),
      D(0),
    );
    // Half the cash of the $100 top-up back: half its credit taken back.
    const half = big.amountTotal / 2;
    const refund = await deliver(
      stripeEvent('charge.refunded', {
        id: big.chargeId,
        object: 'charge',
        amount: big.amountTotal,
        amount_captured: big.amountTotal,
        amount_refunded: half,
        currency: 'usd',
        payment_intent: big.paymentIntent,
        metadata: { topUpId: big.topUpId, accountId },
        refunded: false,
      }),
    );
    expect(refund).toBe('refund_debited');

    const me = (path: string) => t.http.get(`/v1/me${path}`).set(...bearer(consoleKey));
    const ledger = (await me('/ledger').expect(200)).body.data as {
      type: string;
      amount: string;
      reference: string;
      createdAt: string;
    }[];
    const refundEntries = ledger.filter((e) => e.type === 'refund');
    expect(refundEntries).toHaveLength(1);
    const topUpEntries = ledger.filter((e) => e.type === 'top_up');
    expect(new Set(topUpEntries.map((e) => e.reference))).toEqual(
      new Set([big.topUpId, small.topUpId]),
    );

    const period = ledger[0].createdAt.slice(0, 7); // the month everything was booked in
    const s = (await me(`/statements/${period}`).expect(200)).body;
    expect(s.topUps).toEqual({
      count: 2,
      credit: '120.00',
      cashPaid: D(big.price).plus(small.price).toFixed(2),
    });
    expect(s.topUps.cashPaid).toBe('102.00'); // 85.00 + 17.00 with the seeded 15% promotion
    expect(s.refunds).toBe(D(refundEntries[0].amount).neg().toFixed(2));
    expect(s.refunds).toBe('50.00');
    expect(s.adjustments).toBe('0.00');
    expect(D(s.usage.charge).toFixed()).toBe(charge.toFixed());
    const closing = D(s.openingBalance)
      .plus(s.topUps.credit)
      .minus(s.usage.charge)
      .minus(s.refunds)
      .plus(s.adjustments);
    expect(closing.toFixed()).toBe(D(s.closingBalance).toFixed());
    expect(s.closingBalance).toBe((await me('').expect(200)).body.balance);

    const admin = await t.http
      .get(`/v1/admin/accounts/${accountId}/statements/${period}`)
      .set(...bearer(t.adminKey))
      .expect(200);
    expect(admin.body).toEqual(s);
  });
});
