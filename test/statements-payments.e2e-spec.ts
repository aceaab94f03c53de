import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  adminHeaders,
  createAccount,
  CreatedAccount,
  createStripeTestApp,
  createToken,
  createTopUp,
  deliverWebhook,
  paidEvent,
  PendingTopUp,
  postEvents,
  refundedEvent,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { bearer, TestApp } from './helpers/test-app.js';

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;
const D = (v: Decimal.Value): Decimal => new Decimal(v);

/** Top-ups credited by the webhook and a refund, as they reach a statement. */
describe('statements with top-ups and refunds', () => {
  let stub: StripeStub;
  let t: TestApp;

  beforeAll(async () => {
    stub = await startStripeStub();
    t = await createStripeTestApp(stub, SECRET);
  });
  afterAll(async () => {
    await t.close();
    await stub.close();
  });

  const deliver = async (event: Record<string, unknown>): Promise<string> => {
    const res = await deliverWebhook(t, event, SECRET).expect(200);
    return res.body.outcome as string;
  };

  /** Creates a top-up through the API and pays it through the webhook. */
  const paidTopUp = async (account: CreatedAccount, credit: string): Promise<PendingTopUp> => {
    const c = await createTopUp(t, stub, account, credit);
    const outcome = await deliver(paidEvent(c));
    expect(outcome).toBe('credited');
    return c;
  };

  it('shows top-up credit, the cash paid and refunds, and reconciles to the balance', async () => {
    const account = await createAccount(t, 'Pays by card');
    const { id: accountId, consoleKey } = account;
    const token = await createToken(t, accountId, { name: 'card' });

    const big = await paidTopUp(account, '100.00');
    const small = await paidTopUp(account, '20.00');
    const usage = await postEvents(t, [
      {
        requestId: `req_${randomUUID()}`,
        tokenId: token.id,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: { inputTokens: 89, outputTokens: 1145 },
      },
      {
        requestId: `req_${randomUUID()}`,
        tokenId: token.id,
        model: 'gpt-image-2-all',
        statusCode: 200,
      },
    ]).expect(200);
    const charge = (usage.body.results as { charge: string }[]).reduce(
      (s, r) => s.plus(r.charge),
      D(0),
    );
    // Half the cash of the $100 top-up back: half its credit taken back.
    const half = big.session.amount_total / 2;
    const refund = await deliver(refundedEvent(big, half));
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
      .set(...adminHeaders(t))
      .expect(200);
    expect(admin.body).toEqual(s);
  });
});
