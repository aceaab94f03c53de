import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes, randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import type { Response } from 'supertest';
import { contractViolation } from './helpers/fuzz.js';
import {
  balanceOf,
  createAccount,
  createStripeTestApp,
  createTopUp,
  deliverWebhook,
  disputeEvent,
  newDisputeId,
  newRefundId,
  paidEvent,
  PendingTopUp,
  postWebhook,
  refundedEvent,
  refundUpdatedEvent,
  topUpView,
} from './helpers/api.js';
import { newEventId, startStripeStub, StripeStub, stripeEvent } from './helpers/stripe-stub.js';
import { TestApp } from './helpers/test-app.js';

/*
 * Issue 6, item 4: abuse of the Stripe webhook beyond what webhook.e2e-spec.ts covers —
 * signatures at the edge of the timestamp tolerance, event ids reused with other bodies, events
 * about unknown or other accounts' top-ups, absurd amounts, unknown types and payloads that
 * are not events at all. Whatever arrives: nothing credited twice, nothing credited wrongly,
 * never a 5xx, and every refusal in the contract's error body.
 */

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;
/** Stripe's SDK default, which the service uses. */
const TOLERANCE_S = 300;

const nowS = (): number => Math.floor(Date.now() / 1000);

describe('Stripe webhook abuse', () => {
  let stub: StripeStub;
  let t: TestApp;

  beforeAll(async () => {
    stub = await startStripeStub();
    t = await createStripeTestApp(stub, SECRET, 'sk_test_stub_abuse');
  });
  afterAll(async () => {
    await t?.close();
    await stub?.close();
  });

  const newAccount = () => createAccount(t, `Abuse ${randomBytes(3).toString('hex')}`);

  /** A fresh account with a pending top-up created through the API (and the stub). */
  const newTopUp = async (
    credit = '100.00',
    account?: { id: string; consoleKey: string },
  ): Promise<PendingTopUp> => createTopUp(t, stub, account ?? (await newAccount()), credit);

  /** Signs the exact bytes given (which need not be an event, or even an object). */
  const signRaw = (payload: string, timestamp?: number): string =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET, timestamp });

  const deliver = (event: Record<string, unknown>, timestamp?: number): Promise<Response> =>
    deliverWebhook(t, event, SECRET, timestamp);

  const ledger = async (accountId: string): Promise<{ type: string; amount: string }[]> =>
    (
      await t.sql.query<{ type: string; amount: string }>(
        `SELECT type, amount::text AS amount FROM ledger_entries WHERE account_id = $1 ORDER BY id`,
        [accountId],
      )
    ).rows;

  const ledgerSize = async (): Promise<number> =>
    Number(
      (await t.sql.query<{ n: string }>(`SELECT count(*) AS n FROM ledger_entries`)).rows[0].n,
    );

  const eventRows = async (id: string): Promise<{ type: string; outcome: string }[]> =>
    (
      await t.sql.query<{ type: string; outcome: string }>(
        `SELECT type, outcome FROM stripe_events WHERE id = $1`,
        [id],
      )
    ).rows;

  /** A refusal in the contract's shape: 400 validation_failed naming the signature header. */
  const expectRefused = (res: Response): void => {
    expect(res.status).toBe(400);
    expect(contractViolation(res.status, res.body, res.text)).toBeNull();
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(
      'Stripe-Signature',
    );
  };

  /** Below 500 and, when an error, the contract's body without a stack trace. */
  const expectNoFault = (res: Response, what: string): void => {
    const problem =
      res.status >= 500
        ? `status ${res.status}`
        : contractViolation(res.status, res.body, res.text);
    if (problem) throw new Error(`${what}: ${problem} — ${res.status} ${res.text.slice(0, 300)}`);
  };

  describe('signature timestamps', () => {
    it(`refuses a signature older than the ${TOLERANCE_S} s tolerance and accepts one just inside it`, async () => {
      const c = await newTopUp('20.00');
      const event = paidEvent(c);
      expectRefused(await deliver(event, nowS() - TOLERANCE_S - 5));
      expect(await eventRows(event.id as string)).toEqual([]);
      expect((await topUpView(t, c)).status).toBe('pending');

      const res = await deliver(event, nowS() - TOLERANCE_S + 30);
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('20.00');
    });

    it(`refuses a signature dated more than ${TOLERANCE_S} s in the future and accepts one just inside`, async () => {
      const c = await newTopUp('20.00');
      const event = paidEvent(c);
      for (const ahead of [86_400, 3600, TOLERANCE_S + 5]) {
        expectRefused(await deliver(event, nowS() + ahead));
      }
      expect(await eventRows(event.id as string)).toEqual([]);
      expect((await topUpView(t, c)).status).toBe('pending');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');

      const res = await deliver(event, nowS() + TOLERANCE_S - 30);
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('20.00');
    });

    it('refuses a future-dated signature even when a second, current timestamp comes first', async () => {
      const c = await newTopUp('10.00');
      const payload = JSON.stringify(paidEvent(c));
      const future = signRaw(payload, nowS() + 86_400);
      // The SDK reads the last t=; a current one in front of it changes nothing.
      expectRefused(await postWebhook(t, payload, `t=${nowS()},${future}`));
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('refuses the original signature of a credited event replayed after the tolerance, crediting nothing more', async () => {
      const c = await newTopUp('30.00');
      const event = paidEvent(c);
      // The genuine delivery, signed long enough ago that its header is now stale.
      const original = nowS() - 60;
      expect((await deliver(event, original)).body.outcome).toBe('credited');
      const payload = JSON.stringify(event);
      const staleHeader = signRaw(payload, original - TOLERANCE_S);
      expectRefused(await postWebhook(t, payload, staleHeader));
      expect(await balanceOf(t, c.consoleKey)).toBe('30.00');
      expect(await ledger(c.accountId)).toHaveLength(1);
      expect(await eventRows(event.id as string)).toEqual([
        { type: 'checkout.session.completed', outcome: 'credited' },
      ]);
    });

    it('refuses a stale signature whose timestamp was rewritten to look fresh', async () => {
      const c = await newTopUp('10.00');
      const event = paidEvent(c);
      const payload = JSON.stringify(event);
      const stale = signRaw(payload, nowS() - 3600);
      const rewritten = stale.replace(/t=\d+/, `t=${nowS()}`);
      expect(rewritten).not.toBe(stale);
      expectRefused(await postWebhook(t, payload, rewritten));
      // The right v1 next to a fresh timestamp it was not computed with: refused too.
      const v1 = /v1=([0-9a-f]+)/.exec(stale)?.[1];
      expectRefused(await postWebhook(t, payload, `t=${nowS()},v1=${v1}`));
      expect(await eventRows(event.id as string)).toEqual([]);
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('refuses a header with only a v0 signature, a duplicated timestamp or an empty v1', async () => {
      const c = await newTopUp('10.00');
      const payload = JSON.stringify(paidEvent(c));
      const good = signRaw(payload);
      const ts = /t=(\d+)/.exec(good)?.[1] ?? '';
      const sig = /v1=([0-9a-f]+)/.exec(good)?.[1] ?? '';
      for (const header of [
        `t=${ts},v0=${sig}`,
        `t=${ts},v1=`,
        `t=,v1=${sig}`,
        `t=0,v1=${sig}`,
        `v1=${sig}`,
        `t=${ts};v1=${sig}`,
        `${good}`.toUpperCase(),
        `t=${ts},v1=${sig.slice(0, -1)}`,
        'x'.repeat(4000),
      ]) {
        const res = await postWebhook(t, payload, header);
        try {
          expectRefused(res);
        } catch (err) {
          throw new Error(`header ${header.slice(0, 60)}: ${String(err)}`);
        }
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect((await topUpView(t, c)).status).toBe('pending');
    });
  });

  describe('an event id reused with another body', () => {
    it('does not credit a payment delivered under the id of an ignored event', async () => {
      const c = await newTopUp('40.00');
      const id = newEventId();
      expect(
        (
          await deliver(
            stripeEvent('customer.created', { id: 'cus_test_x', object: 'customer' }, id),
          )
        ).body,
      ).toEqual({ received: true, duplicate: false, outcome: 'ignored' });
      const reused = await deliver(paidEvent(c, {}, id));
      expect(reused.status).toBe(200);
      expect(reused.body).toEqual({ received: true, duplicate: true, outcome: 'ignored' });
      expect((await topUpView(t, c)).status).toBe('pending');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await eventRows(id)).toEqual([{ type: 'customer.created', outcome: 'ignored' }]);

      // Stripe's own delivery, under its own id, still credits (once).
      expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('40.00');
    });

    it("does not credit a second top-up, or another account's, under the id of a credited payment", async () => {
      const a = await newTopUp('50.00');
      const b = await newTopUp('50.00');
      const id = newEventId();
      expect((await deliver(paidEvent(a, {}, id))).body.outcome).toBe('credited');
      const reused = await deliver(paidEvent(b, {}, id));
      expect(reused.body).toEqual({ received: true, duplicate: true, outcome: 'credited' });
      expect(await balanceOf(t, a.consoleKey)).toBe('50.00');
      expect(await balanceOf(t, b.consoleKey)).toBe('0.00');
      expect((await topUpView(t, b)).status).toBe('pending');
    });

    it('does not refund under the id of a payment, nor take a larger refund under the id of a smaller one', async () => {
      const c = await newTopUp('100.00');
      const payId = newEventId();
      expect((await deliver(paidEvent(c, {}, payId))).body.outcome).toBe('credited');
      expect((await deliver(refundedEvent(c, 8500, {}, payId))).body.duplicate).toBe(true);
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');

      const refundId = newEventId();
      expect((await deliver(refundedEvent(c, 4250, {}, refundId))).body.outcome).toBe(
        'refund_debited',
      );
      expect((await deliver(refundedEvent(c, 8500, {}, refundId))).body).toEqual({
        received: true,
        duplicate: true,
        outcome: 'refund_debited',
      });
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCash: '42.50',
        refundedCredit: '50.00',
      });
    });

    // Protects the race of one event id carrying different bodies at once: the primary key
    // admits exactly one of them, whichever commits first, and the rest are duplicates.
    it('applies exactly one of several different bodies sent at once under one id', async () => {
      const tops = await Promise.all([
        newTopUp('10.00'),
        newTopUp('10.00'),
        newTopUp('10.00'),
        newTopUp('10.00'),
      ]);
      const id = newEventId();
      const results = await Promise.all(
        tops.flatMap((c) => [deliver(paidEvent(c, {}, id)), deliver(paidEvent(c, {}, id))]),
      );
      for (const r of results) expect(r.status).toBe(200);
      expect(results.filter((r) => r.body.duplicate === false)).toHaveLength(1);
      const balances = await Promise.all(tops.map((c) => balanceOf(t, c.consoleKey)));
      expect(balances.filter((b) => b === '10.00')).toHaveLength(1);
      expect(balances.filter((b) => b === '0.00')).toHaveLength(3);
    });
  });

  describe("events about unknown or another account's top-ups", () => {
    it.each([
      [
        'a random top-up id',
        () => ({ metadata: { topUpId: randomUUID() }, client_reference_id: randomUUID() }),
      ],
      [
        'an injection-shaped reference',
        () => ({ metadata: { topUpId: "' OR 1=1 --" }, client_reference_id: "' OR 1=1 --" }),
      ],
      [
        'a NUL in the reference',
        () => ({ metadata: { topUpId: 'a\u0000b' }, client_reference_id: '\u0000' }),
      ],
      ['no reference at all', () => ({ metadata: null, client_reference_id: null })],
      ['metadata of the wrong type', () => ({ metadata: 'topUpId', client_reference_id: 42 })],
    ])(
      'answers 200 unknown_top_up for a payment naming %s and credits nobody',
      async (_what, overrides) => {
        const c = await newTopUp('25.00');
        const before = await ledgerSize();
        const event = paidEvent(c, {
          id: `cs_test_${randomBytes(6).toString('hex')}`,
          ...overrides(),
        });
        const res = await deliver(event);
        expectNoFault(res, String(_what));
        expect(res.status).toBe(200);
        expect(res.body.outcome).toBe('unknown_top_up');
        expect(await ledgerSize()).toBe(before);
        expect((await topUpView(t, c)).status).toBe('pending');
        expect(await eventRows(event.id as string)).toEqual([
          { type: 'checkout.session.completed', outcome: 'unknown_top_up' },
        ]);
      },
    );

    it("credits neither account when a session of account A names account B's top-up", async () => {
      const a = await newTopUp('60.00');
      const b = await newTopUp('60.00');
      // A's real session and amount, pointed at B's top-up (same price), metadata naming A.
      const res = await deliver(
        paidEvent(a, { metadata: { topUpId: b.topUpId, accountId: a.accountId } }),
      );
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('needs_review');
      expect(await balanceOf(t, a.consoleKey)).toBe('0.00');
      expect(await balanceOf(t, b.consoleKey)).toBe('0.00');
      expect((await topUpView(t, a)).status).toBe('pending');
      expect(await ledger(b.accountId)).toEqual([]);
    });

    it("credits neither when B's own session carries metadata naming account A", async () => {
      const a = await newTopUp('60.00');
      const b = await newTopUp('60.00');
      const res = await deliver(
        paidEvent(b, { metadata: { topUpId: b.topUpId, accountId: a.accountId } }),
      );
      expect(res.body.outcome).toBe('needs_review');
      expect(await balanceOf(t, a.consoleKey)).toBe('0.00');
      expect(await balanceOf(t, b.consoleKey)).toBe('0.00');
    });

    it("takes nothing from the top-up a refund's metadata names when the refund is of another payment", async () => {
      const c = await newTopUp('100.00');
      expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
      // The charge of some other PaymentIntent (not the one that paid this top-up).
      const foreign = refundedEvent(c, 8500, {
        id: `ch_test_${randomBytes(8).toString('hex')}`,
        payment_intent: `pi_test_${randomBytes(8).toString('hex')}`,
      });
      const res = await deliver(foreign);
      expectNoFault(res, 'foreign refund');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect((await ledger(c.accountId)).filter((e) => e.type === 'refund')).toEqual([]);
    });

    it('takes nothing when a refund names a top-up of another account than its metadata says', async () => {
      const a = await newTopUp('100.00');
      const other = await newAccount();
      expect((await deliver(paidEvent(a))).body.outcome).toBe('credited');
      const res = await deliver(
        refundedEvent(a, 8500, {
          payment_intent: null,
          metadata: { topUpId: a.topUpId, accountId: other.id },
        }),
      );
      expectNoFault(res, 'refund naming another account');
      expect(await balanceOf(t, a.consoleKey)).toBe('100.00');
      expect(await balanceOf(t, other.consoleKey)).toBe('0.00');
    });
  });

  describe('amounts', () => {
    it('takes back exactly the credit, never more, when amount_refunded exceeds what was paid', async () => {
      const c = await newTopUp('100.00');
      expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
      expect((await deliver(refundedEvent(c, 1_000_000))).body.outcome).toBe('refund_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({ refundedCredit: '100.00' });
      expect((await deliver(refundedEvent(c, 2_000_000))).body.outcome).toBe('refund_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      const refunds = (await ledger(c.accountId)).filter((e) => e.type === 'refund');
      expect(refunds).toHaveLength(1);
      expect(new Decimal(refunds[0].amount).eq(-100)).toBe(true);
    });

    it.each([
      ['negative', -8500],
      ['a string', '8500'],
      ['fractional', 4250.5],
      ['1e308', 1e308],
      ['past 2^53', 2 ** 53 + 2],
      ['a boolean', true],
      ['an object', { value: 8500 }],
      ['an array', [8500]],
      ['null', null],
    ])('debits nothing for a refund whose amount_refunded is %s', async (what, amount) => {
      const c = await newTopUp('100.00');
      expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
      const res = await deliver(refundedEvent(c, amount));
      expectNoFault(res, what);
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('refund_ignored');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await topUpView(t, c)).toMatchObject({ refundedCash: '0.00', refundedCredit: '0.00' });
    });

    it.each([
      ['missing', { currency: undefined }],
      ['null', { currency: null }],
      ['a number', { currency: 840 }],
      ['another currency', { currency: 'eur' }],
    ])(
      'debits nothing, and does not fail, for a refund whose currency is %s',
      async (what, overrides) => {
        const c = await newTopUp('100.00');
        expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
        const res = await deliver(refundedEvent(c, 8500, overrides));
        expectNoFault(res, what);
        expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      },
    );

    it('debits an upper-case USD refund like a lower-case one, once', async () => {
      const c = await newTopUp('100.00');
      await deliver(paidEvent(c));
      expect((await deliver(refundedEvent(c, 8500, { currency: 'USD' }))).body.outcome).toBe(
        'refund_debited',
      );
      expect((await deliver(refundedEvent(c, 8500, { currency: 'usd' }))).body.outcome).toBe(
        'refund_unchanged',
      );
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it.each([
      ['a string', '8500'],
      ['negative', -8500],
      ['zero', 0],
      ['fractional', 8500.5],
      ['ten times the price', 85000],
      ['1e308', 1e308],
      ['a boolean', true],
      ['an object', { amount: 8500 }],
    ])('flags a payment whose amount_total is %s and credits nothing', async (what, amount) => {
      const c = await newTopUp('100.00');
      const res = await deliver(paidEvent(c, { amount_total: amount }));
      expectNoFault(res, what);
      expect(res.body.outcome).toBe('needs_review');
      expect((await topUpView(t, c)).status).toBe('needs_review');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await ledger(c.accountId)).toEqual([]);
    });

    it.each([
      ['padded', ' usd'],
      ['with a NUL', 'usd\u0000'],
      ['longer', 'usdt'],
      ['a number', 840],
      ['an array', ['usd']],
    ])('flags a payment whose currency is %s and credits nothing', async (what, currency) => {
      const c = await newTopUp('100.00');
      const res = await deliver(paidEvent(c, { currency }));
      expectNoFault(res, what);
      expect(res.body.outcome).toBe('needs_review');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('credits a payment reported in upper-case USD exactly once', async () => {
      const c = await newTopUp('100.00');
      expect((await deliver(paidEvent(c, { currency: 'USD' }))).body.outcome).toBe('credited');
      expect((await deliver(paidEvent(c, { currency: 'Usd' }))).body.outcome).toBe('already_paid');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await ledger(c.accountId)).toHaveLength(1);
    });
  });

  describe('dispute and refund events', () => {
    const paidTopUpOf = async (credit = '100.00'): Promise<PendingTopUp> => {
      const c = await newTopUp(credit);
      expect((await deliver(paidEvent(c))).body.outcome).toBe('credited');
      return c;
    };

    it.each([
      ['negative', -8500],
      ['a string', '8500'],
      ['fractional', 4250.5],
      ['1e308', 1e308],
      ['past 2^53', 2 ** 53 + 2],
      ['a boolean', true],
      ['an object', { value: 8500 }],
      ['an array', [8500]],
      ['null', null],
    ])('debits nothing for a dispute whose amount is %s', async (what, amount) => {
      const c = await paidTopUpOf();
      const res = await deliver(disputeEvent(c, 'charge.dispute.created', newDisputeId(), amount));
      expectNoFault(res, what);
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('dispute_ignored');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect((await ledger(c.accountId)).filter((e) => e.type === 'dispute')).toEqual([]);
    });

    it.each([
      ['another currency', { currency: 'eur' }],
      ['a padded currency', { currency: ' usd' }],
      ['no currency', { currency: null }],
    ])('debits nothing for a dispute in %s', async (what, overrides) => {
      const c = await paidTopUpOf();
      const res = await deliver(
        disputeEvent(c, 'charge.dispute.created', newDisputeId(), 8500, overrides),
      );
      expectNoFault(res, what);
      expect(res.body.outcome).toBe('dispute_ignored');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });

    it.each([
      ['an injection-shaped id', "dp_' OR 1=1 --"],
      ['a 5,000-character id', `dp_${'x'.repeat(5000)}`],
      ['a NUL in the id', 'dp_\u0000'],
      ['a numeric id', 42],
    ])('never faults on a dispute with %s', async (what, id) => {
      const c = await paidTopUpOf();
      const res = await deliver(disputeEvent(c, 'charge.dispute.created', 'dp_x', 4250, { id }));
      expectNoFault(res, what);
      expect(res.status).toBe(200);
      expect(await balanceOf(t, c.consoleKey)).toBe(
        typeof id === 'string' && /^[\x21-\x7e]{1,255}$/.test(id) ? '50.00' : '100.00',
      );
    });

    it('does not debit under the id of a payment, nor book back a dispute under the id of its creation', async () => {
      const c = await newTopUp('100.00');
      const payId = newEventId();
      expect((await deliver(paidEvent(c, {}, payId))).body.outcome).toBe('credited');
      const d = newDisputeId();
      expect(
        (await deliver(disputeEvent(c, 'charge.dispute.created', d, 8500, {}, payId))).body
          .duplicate,
      ).toBe(true);
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      const createdId = newEventId();
      expect(
        (await deliver(disputeEvent(c, 'charge.dispute.created', d, 8500, {}, createdId))).body
          .outcome,
      ).toBe('dispute_debited');
      const reused = await deliver(
        disputeEvent(c, 'charge.dispute.closed', d, 8500, { status: 'won' }, createdId),
      );
      expect(reused.body).toEqual({ received: true, duplicate: true, outcome: 'dispute_debited' });
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('debits the account whose payment was disputed, never the one another field names', async () => {
      const a = await paidTopUpOf();
      const b = await paidTopUpOf();
      // A's PaymentIntent with B's charge: the PaymentIntent decides.
      const res = await deliver(
        disputeEvent(a, 'charge.dispute.created', newDisputeId(), 8500, { charge: b.chargeId }),
      );
      expect(res.body.outcome).toBe('dispute_debited');
      expect(await balanceOf(t, a.consoleKey)).toBe('0.00');
      expect(await balanceOf(t, b.consoleKey)).toBe('100.00');
    });

    it('gives back no more than a refund took when a failure reports a larger amount', async () => {
      const c = await paidTopUpOf();
      expect((await deliver(refundedEvent(c, 1700))).body.outcome).toBe('refund_debited');
      const res = await deliver(refundUpdatedEvent(c, newRefundId(), 1_000_000, 'failed'));
      expectNoFault(res, 'huge failed refund');
      expect(res.body.outcome).toBe('refund_reversed');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await topUpView(t, c)).toMatchObject({ refundedCredit: '0.00' });
    });

    it('never faults on a refund update whose status is odd', async () => {
      const c = await paidTopUpOf();
      for (const status of [null, 42, 'FAILED', 'failed ', 'x'.repeat(500), ['failed']]) {
        const res = await deliver(
          refundUpdatedEvent(c, newRefundId(), 8500, 'pending', { status }),
        );
        expectNoFault(res, String(status).slice(0, 20));
        expect(res.status).toBe(200);
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });
  });

  describe('unknown event types', () => {
    it.each([
      ['payment_intent.succeeded', 'payment_intent.succeeded'],
      ['charge.dispute.updated', 'charge.dispute.updated'],
      ['a handled dispute type in another case', 'Charge.Dispute.Created'],
      ['the handled type in another case', 'Checkout.Session.Completed'],
      ['the handled type with a trailing space', 'checkout.session.completed '],
      ['the handled type with a leading space', ' checkout.session.completed'],
      ['a longer type', 'checkout.session.completed.extra'],
      ['a wildcard', 'checkout.session.*'],
      ['an injection-shaped type', "'; DROP TABLE stripe_events; --"],
      ['a 5,000-character type', 'x'.repeat(5000)],
    ])(
      'records %s once, ignores it and credits nothing even when it carries a paid session',
      async (_label, type) => {
        const c = await newTopUp('15.00');
        const object = {
          ...c.session,
          status: 'complete',
          payment_status: 'paid',
          payment_intent: c.paymentIntent,
        };
        const event = stripeEvent(type, object);
        const res = await deliver(event);
        expectNoFault(res, type.slice(0, 40));
        expect(res.body).toEqual({ received: true, duplicate: false, outcome: 'ignored' });
        expect((await deliver(event)).body).toEqual({
          received: true,
          duplicate: true,
          outcome: 'ignored',
        });
        expect(await eventRows(event.id as string)).toEqual([{ type, outcome: 'ignored' }]);
        expect((await topUpView(t, c)).status).toBe('pending');
        expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      },
    );
  });

  describe('signed payloads that are not Stripe events', () => {
    const shapes = (c: PendingTopUp): [string, string][] => {
      const base = paidEvent(c);
      const without = (k: string): Record<string, unknown> => {
        const copy = { ...base };
        delete copy[k];
        return copy;
      };
      return [
        ['an empty array', '[]'],
        ['an array of an event', JSON.stringify([base])],
        ['a string', '"checkout.session.completed"'],
        ['a number', '8500'],
        ['null', 'null'],
        ['true', 'true'],
        ['an empty object', '{}'],
        ['no id', JSON.stringify(without('id'))],
        ['no type', JSON.stringify(without('type'))],
        ['no data', JSON.stringify(without('data'))],
        ['data null', JSON.stringify({ ...base, data: null })],
        ['data.object null', JSON.stringify({ ...base, data: { object: null } })],
        ['data.object a string', JSON.stringify({ ...base, data: { object: 'cs_test' } })],
        ['data.object an array', JSON.stringify({ ...base, data: { object: [c.session] } })],
        ['an id that is a number', JSON.stringify({ ...base, id: 42 })],
        ['an id that is an object', JSON.stringify({ ...base, id: { $ne: null } })],
        ['an id that is null', JSON.stringify({ ...base, id: null })],
        ['an empty id', JSON.stringify({ ...base, id: '' })],
        ['a 10 KB id', JSON.stringify({ ...base, id: `evt_${randomBytes(5000).toString('hex')}` })],
        ['an id with a NUL', JSON.stringify({ ...base, id: 'evt_\u0000' })],
        ['a type that is null', JSON.stringify({ ...base, type: null })],
        ['a type that is a number', JSON.stringify({ ...base, type: 42 })],
        [
          'a type that is an array',
          JSON.stringify({ ...base, type: ['checkout.session.completed'] }),
        ],
        [
          'a deeply nested object',
          `{"id":"${newEventId()}","type":"x","data":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
        ],
        ['a thin v2 event', JSON.stringify({ ...base, object: 'v2.core.event' })],
      ];
    };

    // Each shape wraps a paid session of one top-up: an envelope odd enough may still be
    // processed (an id of 42 is stored as "42"), but the top-up is credited at most once, at its
    // price, and nothing ever answers 5xx.
    it('never answers 5xx, always the contract body when refusing, and credits at most once', async () => {
      const c = await newTopUp('35.00');
      const failures: string[] = [];
      for (const [what, payload] of shapes(c)) {
        const res = await postWebhook(t, payload, signRaw(payload));
        try {
          expectNoFault(res, what);
        } catch (err) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
      expect(failures).toEqual([]);
      // The genuine event afterwards: credited now, or already (by an odd envelope above).
      expect(['credited', 'already_paid']).toContain((await deliver(paidEvent(c))).body.outcome);
      expect(await balanceOf(t, c.consoleKey)).toBe('35.00');
      expect(await ledger(c.accountId)).toHaveLength(1);
    });
  });

  describe('size', () => {
    // The contract's limit for every route but the usage batch: 64 KiB. Stripe's events are a
    // few KB (a session, a charge, a dispute), far below it.
    it.each([
      ['over 64 KiB', 64 * 1024 + 10],
      ['over 2 MB', 2 * 1024 * 1024 + 10],
    ])('refuses a signed body %s with 413 and records nothing', async (_what, size) => {
      const c = await newTopUp('45.00');
      const event = paidEvent(c, { custom_text: { submit: { message: 'x'.repeat(size) } } });
      const res = await deliver(event);
      expect(res.status).toBe(413);
      expect(contractViolation(res.status, res.body, res.text)).toBeNull();
      expect(res.body.error.code).toBe('payload_too_large');
      expect(await eventRows(event.id as string)).toEqual([]);
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    it('processes a genuine 48 KiB event once', async () => {
      const c = await newTopUp('45.00');
      const event = paidEvent(c, { custom_text: { submit: { message: 'x'.repeat(48 * 1024) } } });
      expect((await deliver(event)).body.outcome).toBe('credited');
      expect((await deliver(event)).body.duplicate).toBe(true);
      expect(await balanceOf(t, c.consoleKey)).toBe('45.00');
    });
  });

  describe('after all of the above', () => {
    it('never credited a top-up twice and kept every balance equal to its ledger', async () => {
      const twice = await t.sql.query(
        `SELECT reference, count(*) FROM ledger_entries WHERE type = 'top_up' GROUP BY reference HAVING count(*) > 1`,
      );
      expect(twice.rows).toEqual([]);
      // No dispute debited or booked back twice; refunds and disputes never took more than a credit.
      const disputedTwice = await t.sql.query(
        `SELECT reference FROM ledger_entries WHERE type = 'dispute' GROUP BY reference HAVING count(*) > 1`,
      );
      expect(disputedTwice.rows).toEqual([]);
      const overTaken = await t.sql.query(
        `SELECT id FROM top_ups WHERE refunded_credit + disputed_credit > credit`,
      );
      expect(overTaken.rows).toEqual([]);
      const drift = await t.sql.query(
        `SELECT a.id FROM accounts a
       LEFT JOIN (SELECT account_id, sum(amount) AS s FROM ledger_entries GROUP BY account_id) l ON l.account_id = a.id
       WHERE a.balance <> coalesce(l.s, 0)`,
      );
      expect(drift.rows).toEqual([]);
      // Every credit is a top-up Stripe reported paid at its price (a credited one may be in
      // review since, for refunds above what was paid).
      const unpaid = await t.sql.query(
        `SELECT l.reference FROM ledger_entries l JOIN top_ups u ON u.id::text = l.reference
       WHERE l.type = 'top_up' AND (u.paid_at IS NULL OR u.status NOT IN ('paid', 'needs_review')
         OR u.amount_paid IS DISTINCT FROM u.price OR l.amount <> u.credit)`,
      );
      expect(unpaid.rows).toEqual([]);
    });
  });
});
