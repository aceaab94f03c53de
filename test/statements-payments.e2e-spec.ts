import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  adminHeaders,
  createAccount,
  CreatedAccount,
  createRedemptionBatch,
  createStripeTestApp,
  createToken,
  createTopUp,
  credit,
  deliverWebhook,
  disputeEvent,
  expectLedgerConsistent,
  newDisputeId,
  newRefundId,
  paidEvent,
  PendingTopUp,
  postEvents,
  redeem,
  refundedEvent,
  refundUpdatedEvent,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { bearer, TestApp } from './helpers/test-app.js';

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;
const D = (v: Decimal.Value): Decimal => new Decimal(v);

/** Top-ups credited by the webhook, refunds, disputes and redemptions, as they reach a statement. */
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
  it('reconciles to the digit with top-ups, refunds, a failed refund, disputes, redemptions, usage and adjustments in one month', async () => {
    const account = await createAccount(t, 'Everything at once');
    const { id: accountId, consoleKey } = account;
    const token = await createToken(t, accountId, { name: 'mixed' });
    const me = (path: string) => t.http.get(`/v1/me${path}`).set(...bearer(consoleKey));

    const big = await paidTopUp(account, '100.00'); // $85 cash
    const small = await paidTopUp(account, '33.33'); // $28.33 cash
    // $10 of $85 refunded: 11.7647058824 taken back; a second refund of $20 fails later.
    expect(await deliver(refundedEvent(big, 1000))).toBe('refund_debited');
    expect(await deliver(refundedEvent(big, 3000))).toBe('refund_debited');
    expect(await deliver(refundUpdatedEvent(big, newRefundId(), 2000, 'failed'))).toBe(
      'refund_reversed',
    );
    // A dispute of $42.50 on the big one, lost; one of all of the small one, won.
    expect(await deliver(disputeEvent(big, 'charge.dispute.created', newDisputeId(), 4250))).toBe(
      'dispute_debited',
    );
    const won = newDisputeId();
    expect(await deliver(disputeEvent(small, 'charge.dispute.created', won, 2833))).toBe(
      'dispute_debited',
    );
    expect(
      await deliver(disputeEvent(small, 'charge.dispute.closed', won, 2833, { status: 'won' })),
    ).toBe('dispute_reinstated');
    // Two codes redeemed, one with every digit the ledger keeps.
    const [a] = (await createRedemptionBatch(t, { name: 'r', credit: '5.0000000001', count: 1 }))
      .codes as string[];
    const [b] = (await createRedemptionBatch(t, { name: 'r', credit: '10.00', count: 1 }))
      .codes as string[];
    await redeem(t, consoleKey, a).expect(201);
    await redeem(t, consoleKey, b).expect(201);
    await credit(t, accountId, '-0.1000000001', 'goodwill reversed');
    const usage = await postEvents(t, [
      {
        requestId: `req_${randomUUID()}`,
        tokenId: token.id,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: { inputTokens: 89, outputTokens: 1145 },
      },
    ]).expect(200);
    const charge = D((usage.body.results as { charge: string }[])[0].charge);

    const ledger = (await me('/ledger?limit=500').expect(200)).body.data as {
      type: string;
      amount: string;
      createdAt: string;
    }[];
    expect([...new Set(ledger.map((e) => e.type))].sort()).toEqual([
      'adjustment',
      'dispute',
      'redemption',
      'refund',
      'top_up',
      'usage',
    ]);
    const sum = (type: string) =>
      ledger.filter((e) => e.type === type).reduce((acc, e) => acc.plus(e.amount), D(0));

    const period = ledger[0].createdAt.slice(0, 7);
    const s = (await me(`/statements/${period}`).expect(200)).body;
    expect(s.topUps).toEqual({ count: 2, credit: '133.33', cashPaid: '113.33' });
    expect(s.redemptions).toEqual({ count: 2, credit: '15.0000000001' });
    // Refunds: $10 of $85 net (the $20 one failed): 11.7647058824, shown positive.
    expect(s.refunds).toBe('11.7647058824');
    expect(D(s.refunds).eq(sum('refund').neg())).toBe(true);
    // Disputes: −50 (lost) −33.33 +33.33 (won).
    expect(s.disputes).toBe('-50.00');
    expect(D(s.disputes).eq(sum('dispute'))).toBe(true);
    expect(s.adjustments).toBe('-0.1000000001');
    expect(D(s.usage.charge).eq(charge)).toBe(true);
    const closing = D(s.openingBalance)
      .plus(s.topUps.credit)
      .plus(s.redemptions.credit)
      .minus(s.usage.charge)
      .minus(s.refunds)
      .plus(s.disputes)
      .plus(s.adjustments);
    expect(closing.toFixed()).toBe(D(s.closingBalance).toFixed());
    expect(D(s.closingBalance).eq((await me('').expect(200)).body.balance)).toBe(true);
    // 133.33 + 15.0000000001 − 11.7647058824 − 50 − 0.1000000001 − usage
    expect(D(s.closingBalance).plus(charge).toFixed()).toBe('86.4652941176');
    await expectLedgerConsistent(t, accountId);

    const admin = await t.http
      .get(`/v1/admin/accounts/${accountId}/statements/${period}`)
      .set(...adminHeaders(t))
      .expect(200);
    expect(admin.body).toEqual(s);
  });
});
