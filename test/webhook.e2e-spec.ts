import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import {
  balanceOf,
  createAccount,
  createStripeTestApp,
  createTopUp,
  deliverWebhook,
  expectErrorCode,
  paidEvent,
  PendingTopUp,
  postWebhook,
  refundedEvent,
  sessionEvent,
  topUpView,
} from './helpers/api.js';
import { signed, startStripeStub, StripeStub, stripeEvent } from './helpers/stripe-stub.js';
import { TestApp } from './helpers/test-app.js';

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

interface LedgerRow {
  type: string;
  amount: string;
  balance_after: string;
  reference: string;
}

describe('Stripe webhook', () => {
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

  /** A fresh account with a pending top-up created through the API (and the stub). */
  const newTopUp = async (credit = '100.00'): Promise<PendingTopUp> =>
    createTopUp(
      t,
      stub,
      await createAccount(t, `Webhook ${randomBytes(3).toString('hex')}`),
      credit,
    );

  const deliver = (event: Record<string, unknown>): Promise<Response> =>
    deliverWebhook(t, event, SECRET);

  const ledger = async (c: PendingTopUp): Promise<LedgerRow[]> =>
    (
      await t.sql.query<LedgerRow>(
        `SELECT type, amount::text AS amount, balance_after::text AS balance_after, reference
         FROM ledger_entries WHERE account_id = $1 ORDER BY id`,
        [c.accountId],
      )
    ).rows;

  /** balance = sum of the ledger, to the digit. */
  const expectConsistent = async (c: PendingTopUp): Promise<void> => {
    const r = await t.sql.query<{ balance: string; sum: string }>(
      `SELECT (SELECT balance::text FROM accounts WHERE id = $1) AS balance,
              (SELECT coalesce(sum(amount), 0)::text FROM ledger_entries WHERE account_id = $1) AS sum`,
      [c.accountId],
    );
    expect(new Decimal(r.rows[0].balance).eq(r.rows[0].sum)).toBe(true);
  };

  const eventCount = async (id: string): Promise<number> =>
    (await t.sql.query(`SELECT 1 FROM stripe_events WHERE id = $1`, [id])).rowCount ?? 0;

  describe('payment', () => {
    it('credits $100 once when Stripe reports the $85 price paid', async () => {
      const c = await newTopUp('100.00');
      expect(c.session.amount_total).toBe(8500);
      const res = await deliver(paidEvent(c));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ received: true, duplicate: false, outcome: 'credited' });

      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      const entries = await ledger(c);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ type: 'top_up', reference: c.topUpId });
      expect(new Decimal(entries[0].amount).eq(100)).toBe(true);
      expect(new Decimal(entries[0].balance_after).eq(100)).toBe(true);

      const view = await topUpView(t, c);
      expect(view).toMatchObject({
        status: 'paid',
        credit: '100.00',
        price: '85.00',
        amountPaid: '85.00',
        refundedCash: '0.00',
        refundedCredit: '0.00',
        reviewReason: null,
      });
      expect(view.paidAt).toEqual(expect.any(String));
      const row = await t.sql.query(`SELECT payment_intent_id FROM top_ups WHERE id = $1`, [
        c.topUpId,
      ]);
      expect(row.rows[0].payment_intent_id).toBe(c.paymentIntent);
      await expectConsistent(c);
    });

    it('answers a replayed event with duplicate: true and credits nothing more', async () => {
      const c = await newTopUp('20.00');
      const event = paidEvent(c);
      expect((await deliver(event)).body.outcome).toBe('credited');
      for (let i = 0; i < 3; i++) {
        const again = await deliver(event);
        expect(again.status).toBe(200);
        expect(again.body).toEqual({ received: true, duplicate: true, outcome: 'credited' });
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('20.00');
      expect(await ledger(c)).toHaveLength(1);
      await expectConsistent(c);
    });

    // Protects the race of concurrent deliveries: the event id's primary key makes 19 of 20
    // copies wait for the first transaction and then find the event already processed.
    it('credits once when the same event arrives 20 times at once', async () => {
      const c = await newTopUp('50.00');
      const event = paidEvent(c);
      const results = await Promise.all(Array.from({ length: 20 }, () => deliver(event)));
      for (const r of results) expect(r.status).toBe(200);
      expect(results.filter((r) => r.body.duplicate === false)).toHaveLength(1);
      expect(results.filter((r) => r.body.duplicate === true)).toHaveLength(19);
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await ledger(c)).toHaveLength(1);
      await expectConsistent(c);
    });

    // Protects the race of two different events about one payment: the top-up row lock
    // serialises them and the second sees the top-up already paid.
    it('credits once when different events report the same payment concurrently', async () => {
      const c = await newTopUp('30.00');
      const events = [
        ...Array.from({ length: 5 }, () => paidEvent(c)),
        ...Array.from({ length: 5 }, () =>
          sessionEvent(c, 'checkout.session.async_payment_succeeded'),
        ),
      ];
      const results = await Promise.all(events.map((e) => deliver(e)));
      for (const r of results) expect(r.status).toBe(200);
      const outcomes = results.map((r) => r.body.outcome as string);
      expect(outcomes.filter((o) => o === 'credited')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'already_paid')).toHaveLength(9);
      expect(await balanceOf(t, c.consoleKey)).toBe('30.00');
      expect(await ledger(c)).toHaveLength(1);
    });

    it('flags a payment whose amount differs from the price as needs_review and credits nothing', async () => {
      const c = await newTopUp('100.00');
      const res = await deliver(paidEvent(c, { amount_total: 8400 }));
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('needs_review');
      const view = await topUpView(t, c);
      expect(view.status).toBe('needs_review');
      expect(view.amountPaid).toBe('84.00');
      expect(view.reviewReason).toContain('84.00');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await ledger(c)).toHaveLength(0);

      // A later correct-looking event does not credit a flagged top-up either.
      expect((await deliver(paidEvent(c))).body.outcome).toBe('already_in_review');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it.each([
      ['another currency', { currency: 'eur' }],
      ['no amount', { amount_total: null }],
      ['a payment that was not required', { payment_status: 'no_payment_required' }],
      ['another session id', { id: 'cs_test_someone_else' }],
      [
        'metadata naming another account',
        { metadata: { topUpId: '', accountId: '00000000-0000-4000-8000-000000000000' } },
      ],
    ])('flags a payment with %s as needs_review and credits nothing', async (_what, overrides) => {
      const c = await newTopUp('10.00');
      const o = { ...overrides } as Record<string, unknown>;
      if (o.metadata) o.metadata = { ...o.metadata, topUpId: c.topUpId };
      const res = await deliver(paidEvent(c, o));
      expect(res.body.outcome).toBe('needs_review');
      expect((await topUpView(t, c)).status).toBe('needs_review');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('finds the top-up by client_reference_id when metadata is missing', async () => {
      const c = await newTopUp('12.00');
      const res = await deliver(paidEvent(c, { metadata: {} }));
      expect(res.body.outcome).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('12.00');
    });

    it('credits an async payment only when async_payment_succeeded arrives', async () => {
      const c = await newTopUp('40.00');
      const completed = await deliver(paidEvent(c, { payment_status: 'unpaid' }));
      expect(completed.body.outcome).toBe('awaiting_payment');
      expect((await topUpView(t, c)).status).toBe('pending');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');

      const succeeded = await deliver(sessionEvent(c, 'checkout.session.async_payment_succeeded'));
      expect(succeeded.body.outcome).toBe('credited');
      expect((await topUpView(t, c)).status).toBe('paid');
      expect(await balanceOf(t, c.consoleKey)).toBe('40.00');
    });

    it('closes a top-up as failed when the async payment fails, crediting nothing', async () => {
      const c = await newTopUp('40.00');
      await deliver(paidEvent(c, { payment_status: 'unpaid' }));
      const failed = await deliver(
        sessionEvent(c, 'checkout.session.async_payment_failed', { payment_status: 'unpaid' }),
      );
      expect(failed.body.outcome).toBe('failed');
      expect((await topUpView(t, c)).status).toBe('failed');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await ledger(c)).toHaveLength(0);
    });

    it('closes a pending top-up as expired', async () => {
      const c = await newTopUp('15.00');
      const res = await deliver(
        sessionEvent(c, 'checkout.session.expired', {
          status: 'expired',
          payment_status: 'unpaid',
        }),
      );
      expect(res.body.outcome).toBe('expired');
      expect((await topUpView(t, c)).status).toBe('expired');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });
  });

  describe('events out of order', () => {
    it('never un-pays a paid top-up: expired or async failure after payment change nothing', async () => {
      const c = await newTopUp('25.00');
      await deliver(paidEvent(c));
      const expired = await deliver(
        sessionEvent(c, 'checkout.session.expired', { status: 'expired' }),
      );
      expect(expired.body.outcome).toBe('not_pending');
      const failed = await deliver(sessionEvent(c, 'checkout.session.async_payment_failed'));
      expect(failed.body.outcome).toBe('not_pending');
      const unpaidCompleted = await deliver(paidEvent(c, { payment_status: 'unpaid' }));
      expect(unpaidCompleted.body.outcome).toBe('not_pending');
      expect((await topUpView(t, c)).status).toBe('paid');
      expect(await balanceOf(t, c.consoleKey)).toBe('25.00');
      expect(await ledger(c)).toHaveLength(1);
    });

    it('credits a payment Stripe reports after the session was marked expired (the money was taken)', async () => {
      const c = await newTopUp('15.00');
      await deliver(
        sessionEvent(c, 'checkout.session.expired', {
          status: 'expired',
          payment_status: 'unpaid',
        }),
      );
      const res = await deliver(sessionEvent(c, 'checkout.session.async_payment_succeeded'));
      expect(res.body.outcome).toBe('credited');
      expect((await topUpView(t, c)).status).toBe('paid');
      expect(await balanceOf(t, c.consoleKey)).toBe('15.00');
    });

    it('nets out a refund that arrives before the payment once the payment arrives', async () => {
      const c = await newTopUp('100.00');
      const early = await deliver(refundedEvent(c, 4250));
      expect(early.body.outcome).toBe('refund_recorded');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await ledger(c)).toHaveLength(0);
      expect(await topUpView(t, c)).toMatchObject({
        status: 'pending',
        refundedCash: '42.50',
        refundedCredit: '0.00',
      });

      expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      const entries = await ledger(c);
      expect(entries.map((e) => [e.type, new Decimal(e.amount).toFixed(2)])).toEqual([
        ['top_up', '100.00'],
        ['refund', '-50.00'],
      ]);
      expect(await topUpView(t, c)).toMatchObject({
        status: 'paid',
        refundedCash: '42.50',
        refundedCredit: '50.00',
      });

      // The same refund reported again (a new event) takes nothing more.
      expect((await deliver(refundedEvent(c, 4250))).body.outcome).toBe('refund_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      await expectConsistent(c);
    });
  });

  describe('refunds', () => {
    it('debits credit in proportion to cash refunded: $42.50 of $85 takes back $50, the rest later once', async () => {
      const c = await newTopUp('100.00');
      await deliver(paidEvent(c));
      const partial = refundedEvent(c, 4250);
      const first = await deliver(partial);
      expect(first.body).toEqual({ received: true, duplicate: false, outcome: 'refund_debited' });
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await topUpView(t, c)).toMatchObject({
        status: 'paid',
        refundedCash: '42.50',
        refundedCredit: '50.00',
      });
      const refunds = (await ledger(c)).filter((e) => e.type === 'refund');
      expect(refunds).toHaveLength(1);
      expect(new Decimal(refunds[0].amount).eq(-50)).toBe(true);
      expect(refunds[0].reference).toBe(`${c.chargeId}:4250`);

      expect((await deliver(partial)).body.duplicate).toBe(true);
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');

      const full = await deliver(refundedEvent(c, 8500));
      expect(full.body.outcome).toBe('refund_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCash: '85.00',
        refundedCredit: '100.00',
      });

      // Replays of either refund, under new event ids, and the older one arriving late: nothing.
      for (const amount of [8500, 4250]) {
        expect((await deliver(refundedEvent(c, amount))).body.outcome).toBe('refund_unchanged');
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect((await ledger(c)).filter((e) => e.type === 'refund')).toHaveLength(2);
      await expectConsistent(c);
    });

    it('takes back exactly the credit over uneven partial refunds, with no rounding residue', async () => {
      const c = await newTopUp('100.00');
      await deliver(paidEvent(c));
      await deliver(refundedEvent(c, 1000)); // $10 of $85: 100 × 10 / 85 = 11.7647058823529...
      expect(await topUpView(t, c)).toMatchObject({ refundedCredit: '11.7647058824' });
      expect(await balanceOf(t, c.consoleKey)).toBe('88.2352941176');
      await deliver(refundedEvent(c, 8500));
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({ refundedCredit: '100.00' });
      await expectConsistent(c);
    });

    it('debits once when a full refund arrives before the partial one it includes', async () => {
      const c = await newTopUp('100.00');
      await deliver(paidEvent(c));
      expect((await deliver(refundedEvent(c, 8500))).body.outcome).toBe('refund_debited');
      expect((await deliver(refundedEvent(c, 4250))).body.outcome).toBe('refund_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCash: '85.00',
        refundedCredit: '100.00',
      });
    });

    // Protects the race of concurrent refund events: each locks the top-up, so the debits
    // add up to what the largest cumulative refund takes back, never more.
    it('debits the right total when several refund events arrive at once', async () => {
      const c = await newTopUp('100.00');
      await deliver(paidEvent(c));
      const events = [1700, 4250, 8500, 4250, 1700, 8500].map((a) => refundedEvent(c, a));
      const results = await Promise.all(events.map((e) => deliver(e)));
      for (const r of results) expect(r.status).toBe(200);
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCash: '85.00',
        refundedCredit: '100.00',
      });
      await expectConsistent(c);
    });

    it('records a refund of a top-up that was never credited and debits nothing', async () => {
      const c = await newTopUp('100.00');
      await deliver(paidEvent(c, { amount_total: 9000 }));
      expect((await topUpView(t, c)).status).toBe('needs_review');
      const res = await deliver(refundedEvent(c, 9000));
      expect(res.body.outcome).toBe('refund_recorded');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await ledger(c)).toHaveLength(0);
      expect(await topUpView(t, c)).toMatchObject({
        refundedCash: '90.00',
        refundedCredit: '0.00',
      });
    });

    it('ignores a refund of a charge that belongs to no top-up', async () => {
      const res = await deliver(
        stripeEvent('charge.refunded', {
          id: 'ch_test_foreign',
          object: 'charge',
          amount: 1000,
          amount_refunded: 1000,
          currency: 'usd',
          payment_intent: 'pi_test_foreign',
          metadata: {},
        }),
      );
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('unknown_top_up');
    });
  });

  describe('signatures', () => {
    it('refuses a missing, forged, stale or foreign signature and a tampered body with 400, changing nothing', async () => {
      const c = await newTopUp('100.00');
      const event = paidEvent(c);
      const { payload, header } = signed(event, SECRET);
      const tampered = payload.replace('"amount_total":8500', '"amount_total":8501');
      expect(tampered).not.toBe(payload);
      const forged = signed(event, `whsec_${randomBytes(16).toString('hex')}`);
      const stale = signed(event, SECRET, Math.floor(Date.now() / 1000) - 3600);

      const attempts: [string, Promise<Response>][] = [
        ['missing header', postWebhook(t, payload)],
        ['empty header', postWebhook(t, payload, '')],
        ['garbage header', postWebhook(t, payload, 'not-a-signature')],
        ['signed with another secret', postWebhook(t, forged.payload, forged.header)],
        ['tampered body', postWebhook(t, tampered, header)],
        ['stale timestamp', postWebhook(t, stale.payload, stale.header)],
        [
          'signature of another body',
          postWebhook(t, payload, signed(paidEvent(c, { amount_total: 1 }), SECRET).header),
        ],
      ];
      for (const [what, attempt] of attempts) {
        const res = await attempt;
        try {
          expectErrorCode(res, 400, 'validation_failed');
        } catch (err) {
          throw new Error(`${what}: ${String(err)}`);
        }
      }
      expect(await eventCount(event.id as string)).toBe(0);
      expect((await topUpView(t, c)).status).toBe('pending');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await ledger(c)).toHaveLength(0);

      // The genuine delivery still works afterwards.
      expect((await postWebhook(t, payload, header)).body.outcome).toBe('credited');
    });

    it('needs no API key and refuses malformed JSON with 400', async () => {
      const res = await postWebhook(t, '{not json', signed({ id: 'evt_x' }, SECRET).header);
      expect(res.status).toBe(400);
    });
  });

  describe('other events', () => {
    it('records unknown event types once and ignores them with 200', async () => {
      const event = stripeEvent('customer.created', { id: 'cus_test_1', object: 'customer' });
      const res = await deliver(event);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ received: true, duplicate: false, outcome: 'ignored' });
      expect((await deliver(event)).body).toEqual({
        received: true,
        duplicate: true,
        outcome: 'ignored',
      });
      const row = await t.sql.query(`SELECT type, outcome FROM stripe_events WHERE id = $1`, [
        event.id,
      ]);
      expect(row.rows).toEqual([{ type: 'customer.created', outcome: 'ignored' }]);
    });

    it('answers 200 for a session that belongs to no top-up', async () => {
      const event = stripeEvent('checkout.session.completed', {
        id: 'cs_test_foreign',
        object: 'checkout.session',
        amount_total: 100,
        currency: 'usd',
        payment_status: 'paid',
        client_reference_id: 'not-ours',
        metadata: { topUpId: 'not-a-uuid' },
      });
      const res = await deliver(event);
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('unknown_top_up');
      expect(await eventCount(event.id as string)).toBe(1);
    });
  });

  it('counts each event by type and outcome in billing_stripe_events_total', async () => {
    const c = await newTopUp();
    const event = paidEvent(c);
    expect((await deliver(event)).status).toBe(200);
    expect((await deliver(event)).status).toBe(200);
    const text = (
      await t.http.get('/metrics').set('Authorization', `Bearer ${t.adminKey}`).expect(200)
    ).text;
    expect(text).toMatch(
      /billing_stripe_events_total\{type="checkout.session.completed",outcome="credited"\} [1-9]/,
    );
    expect(text).toMatch(
      /billing_stripe_events_total\{type="checkout.session.completed",outcome="duplicate"\} [1-9]/,
    );
  });
});
