import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import {
  adminHeaders,
  balanceOf,
  createAccount,
  createStripeTestApp,
  createTopUp,
  deliverWebhook,
  disputeEvent,
  expectLedgerConsistent,
  newDisputeId,
  paidEvent,
  paidTopUp,
  PendingTopUp,
  refundedEvent,
  topUpView,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { bearer, TestApp } from './helpers/test-app.js';

/*
 * Issue 10, item 1: disputes. A $100 top-up costs $85; a dispute of D cents holds back
 * credit × D ÷ 8500 (never more than refunds and earlier disputes left) as a `dispute` entry,
 * and a won dispute (or funds_reinstated) books it back. Each dispute's debit and reversal
 * happen once, whatever the order, repetition or concurrency of its events.
 */

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

interface Entry {
  type: string;
  amount: string;
  reference: string;
}

describe('Stripe disputes', () => {
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

  const newAccount = () => createAccount(t, `Disputes ${randomBytes(3).toString('hex')}`);
  const paid = async (credit = '100.00'): Promise<PendingTopUp> =>
    paidTopUp(t, stub, await newAccount(), credit, SECRET);

  const deliver = async (event: Record<string, unknown>): Promise<Response> => {
    const res = await deliverWebhook(t, event, SECRET);
    expect(res.status).toBe(200);
    return res;
  };
  const outcome = async (event: Record<string, unknown>): Promise<string> =>
    (await deliver(event)).body.outcome as string;

  const created = (c: PendingTopUp, d: string, cents = 8500) =>
    disputeEvent(c, 'charge.dispute.created', d, cents);
  const withdrawn = (c: PendingTopUp, d: string, cents = 8500) =>
    disputeEvent(c, 'charge.dispute.funds_withdrawn', d, cents);
  const reinstated = (c: PendingTopUp, d: string, cents = 8500) =>
    disputeEvent(c, 'charge.dispute.funds_reinstated', d, cents, { status: 'under_review' });
  const closed = (c: PendingTopUp, d: string, status: string, cents = 8500) =>
    disputeEvent(c, 'charge.dispute.closed', d, cents, { status });

  const disputeEntries = async (c: PendingTopUp): Promise<Entry[]> =>
    (
      await t.sql.query<Entry>(
        `SELECT type, amount::text AS amount, reference FROM ledger_entries
         WHERE account_id = $1 AND type = 'dispute' ORDER BY id`,
        [c.accountId],
      )
    ).rows;
  const amounts = (entries: Entry[]): string[] =>
    entries.map((e) => new Decimal(e.amount).toFixed());

  describe('each path', () => {
    it('created then won: holds back the disputed share, then books it back', async () => {
      const c = await paid();
      const d = newDisputeId();
      expect(await outcome(created(c, d, 4250))).toBe('dispute_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await topUpView(t, c)).toMatchObject({ status: 'paid', disputedCredit: '50.00' });

      expect(await outcome(closed(c, d, 'won', 4250))).toBe('dispute_reinstated');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await topUpView(t, c)).toMatchObject({ disputedCredit: '0.00' });
      const entries = await disputeEntries(c);
      expect(amounts(entries)).toEqual(['-50', '50']);
      expect(entries.map((e) => e.reference)).toEqual([d, `${d}:reinstated`]);

      // The customer's ledger shows both as type dispute.
      const ledger = await t.http
        .get('/v1/me/ledger')
        .set(...bearer(c.consoleKey))
        .expect(200);
      const types = (ledger.body.data as { type: string }[]).map((e) => e.type);
      expect(types).toEqual(['dispute', 'dispute', 'top_up']);
      await expectLedgerConsistent(t, c.accountId);
    });

    it('created then lost: holds back the whole credit once; the closing changes nothing more', async () => {
      const c = await paid();
      const d = newDisputeId();
      expect(await outcome(created(c, d))).toBe('dispute_debited');
      expect(await outcome(withdrawn(c, d))).toBe('dispute_unchanged');
      expect(await outcome(closed(c, d, 'lost'))).toBe('dispute_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(amounts(await disputeEntries(c))).toEqual(['-100']);
      expect(await topUpView(t, c)).toMatchObject({ disputedCredit: '100.00' });
      await expectLedgerConsistent(t, c.accountId);
    });

    it('funds_withdrawn then funds_reinstated: debit once, then back once', async () => {
      const c = await paid();
      const d = newDisputeId();
      expect(await outcome(withdrawn(c, d, 1000))).toBe('dispute_debited');
      // $10 of $85: 100 × 10 / 85 = 11.7647058823529... half-up at scale 10.
      expect(await balanceOf(t, c.consoleKey)).toBe('88.2352941176');
      expect(await outcome(created(c, d, 1000))).toBe('dispute_unchanged');
      expect(await outcome(reinstated(c, d, 1000))).toBe('dispute_reinstated');
      expect(await outcome(closed(c, d, 'won', 1000))).toBe('dispute_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(amounts(await disputeEntries(c))).toEqual(['-11.7647058824', '11.7647058824']);
      await expectLedgerConsistent(t, c.accountId);
    });

    it('books an inquiry closed without a chargeback (warning_closed) back like a won dispute', async () => {
      const c = await paid();
      const d = newDisputeId();
      await outcome(created(c, d, 8500));
      expect(await outcome(closed(c, d, 'warning_closed'))).toBe('dispute_reinstated');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });
  });

  describe('out of order', () => {
    it('never debits a dispute whose won closing arrived before its creation', async () => {
      const c = await paid();
      const d = newDisputeId();
      expect(await outcome(closed(c, d, 'won'))).toBe('dispute_recorded');
      expect(await outcome(created(c, d))).toBe('dispute_unchanged');
      expect(await outcome(withdrawn(c, d))).toBe('dispute_unchanged');
      expect(await outcome(reinstated(c, d))).toBe('dispute_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await disputeEntries(c)).toEqual([]);
    });

    it('debits once when the lost closing arrives before the creation', async () => {
      const c = await paid();
      const d = newDisputeId();
      expect(await outcome(closed(c, d, 'lost', 4250))).toBe('dispute_debited');
      expect(await outcome(created(c, d, 4250))).toBe('dispute_unchanged');
      expect(await outcome(withdrawn(c, d, 4250))).toBe('dispute_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(amounts(await disputeEntries(c))).toEqual(['-50']);
    });

    it('applies a dispute that arrived before the payment once the payment is credited', async () => {
      const account = await newAccount();
      const c = await createTopUp(t, stub, account, '100.00');
      const d = newDisputeId();
      // Stripe knows the PaymentIntent; we do not yet.
      expect(await outcome(created(c, d, 4250))).toBe('unknown_top_up');
      expect(await outcome(paidEvent(c))).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await topUpView(t, c)).toMatchObject({ status: 'paid', disputedCredit: '50.00' });
      expect(await outcome(closed(c, d, 'won', 4250))).toBe('dispute_reinstated');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      await expectLedgerConsistent(t, c.accountId);
    });

    it('never debits a dispute won before its payment was credited', async () => {
      const c = await createTopUp(t, stub, await newAccount(), '100.00');
      const d = newDisputeId();
      expect(await outcome(created(c, d))).toBe('unknown_top_up');
      expect(await outcome(closed(c, d, 'won'))).toBe('unknown_top_up');
      expect(await outcome(paidEvent(c))).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await disputeEntries(c)).toEqual([]);
    });
  });

  describe('replays and concurrency', () => {
    it('answers a replayed event as a duplicate and a re-sent copy under a new id as unchanged', async () => {
      const c = await paid();
      const d = newDisputeId();
      const event = created(c, d);
      expect((await deliver(event)).body).toEqual({
        received: true,
        duplicate: false,
        outcome: 'dispute_debited',
      });
      for (let i = 0; i < 3; i++) {
        expect((await deliver(event)).body.duplicate).toBe(true);
        expect(await outcome(created(c, d))).toBe('dispute_unchanged');
      }
      const won = closed(c, d, 'won');
      expect(await outcome(won)).toBe('dispute_reinstated');
      expect((await deliver(won)).body.duplicate).toBe(true);
      expect(await outcome(closed(c, d, 'won'))).toBe('dispute_unchanged');
      expect(amounts(await disputeEntries(c))).toEqual(['-100', '100']);
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });

    // Protects the race of concurrent deliveries about one dispute: the top-up's row lock (and
    // the dispute's) serialise them, and the dispute's row remembers its debit.
    it('debits once when 20 copies of the creation arrive at once', async () => {
      const c = await paid();
      const d = newDisputeId();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          deliver(i % 2 === 0 ? created(c, d, 4250) : withdrawn(c, d, 4250)),
        ),
      );
      const outcomes = results.map((r) => r.body.outcome as string);
      expect(outcomes.filter((o) => o === 'dispute_debited')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'dispute_unchanged')).toHaveLength(19);
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(amounts(await disputeEntries(c))).toEqual(['-50']);
    });

    // Protects the race of a creation and a won closing arriving together, in any order: the
    // books end as if the dispute never happened, with at most one debit and one reversal.
    it('nets out to nothing when creations and won closings arrive concurrently', async () => {
      for (let round = 0; round < 3; round++) {
        const c = await paid();
        const d = newDisputeId();
        const events = Array.from({ length: 16 }, (_, i) =>
          i % 2 === 0 ? created(c, d) : closed(c, d, 'won'),
        );
        await Promise.all(events.map((e) => deliver(e)));
        expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
        const entries = amounts(await disputeEntries(c));
        expect([[], ['-100', '100']]).toContainEqual(entries);
        expect(await topUpView(t, c)).toMatchObject({ disputedCredit: '0.00' });
        await expectLedgerConsistent(t, c.accountId);
      }
    });
  });

  describe('never more than the credit', () => {
    it('holds back only what refunds left', async () => {
      const c = await paid();
      expect(await outcome(refundedEvent(c, 4250))).toBe('refund_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      const d = newDisputeId();
      // The whole payment disputed, but half was refunded: only the other half is held back.
      expect(await outcome(created(c, d, 8500))).toBe('dispute_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCredit: '50.00',
        disputedCredit: '50.00',
      });
      expect(await outcome(closed(c, d, 'won'))).toBe('dispute_reinstated');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      await expectLedgerConsistent(t, c.accountId);
    });

    it('holds back only what earlier disputes left, and a refund after them takes only the rest', async () => {
      const c = await paid();
      const [d1, d2, d3] = [newDisputeId(), newDisputeId(), newDisputeId()];
      expect(await outcome(created(c, d1, 5100))).toBe('dispute_debited'); // 60
      expect(await outcome(created(c, d2, 5100))).toBe('dispute_debited'); // 40 left of 60
      expect(await outcome(created(c, d3, 100))).toBe('dispute_recorded'); // nothing left
      expect(amounts(await disputeEntries(c))).toEqual(['-60', '-40']);
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await outcome(refundedEvent(c, 8500))).toBe('refund_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      const row = await t.sql.query<{ taken: string; credit: string }>(
        `SELECT (refunded_credit + disputed_credit)::text AS taken, credit::text FROM top_ups WHERE id = $1`,
        [c.topUpId],
      );
      expect(new Decimal(row.rows[0].taken).lte(row.rows[0].credit)).toBe(true);
      // d3 debited nothing, so winning it gives nothing back. d2 gives its 40 back, and the
      // full refund, which found no room before, takes those 40 now.
      expect(await outcome(closed(c, d3, 'won', 100))).toBe('dispute_recorded');
      expect(await outcome(closed(c, d2, 'won', 5100))).toBe('dispute_reinstated');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCredit: '40.00',
        disputedCredit: '60.00',
      });
      await expectLedgerConsistent(t, c.accountId);
    });

    it('holds back the whole credit, never more, for a dispute above the amount paid', async () => {
      const c = await paid();
      expect(await outcome(created(c, newDisputeId(), 1_000_000))).toBe('dispute_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(amounts(await disputeEntries(c))).toEqual(['-100']);
    });
  });

  describe('disputes on top-ups not credited', () => {
    it('records a dispute on a top-up in review and applies it when an admin credits it', async () => {
      const account = await newAccount();
      const c = await createTopUp(t, stub, account, '100.00');
      expect(await outcome(paidEvent(c, { amount_total: 8400 }))).toBe('needs_review');
      const d = newDisputeId();
      expect(await outcome(created(c, d, 4200))).toBe('dispute_recorded');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      const res = await t.http
        .post(`/v1/admin/top-ups/${c.topUpId}/resolve`)
        .set(...adminHeaders(t))
        .send({ action: 'credit', note: 'paid 84.00 is fine' })
        .expect(200);
      // 100 × 42 / 85 = 49.4117647058823... held back once the credit is booked.
      expect(res.body).toMatchObject({ status: 'paid', disputedCredit: '49.4117647059' });
      expect(await balanceOf(t, c.consoleKey)).toBe('50.5882352941');
      await expectLedgerConsistent(t, c.accountId);
    });
  });

  describe('malformed disputes', () => {
    it('debits nothing for a dispute without a usable amount and flags the top-up for review', async () => {
      const c = await paid();
      const res = await deliver(disputeEvent(c, 'charge.dispute.created', newDisputeId(), '8500'));
      expect(res.body.outcome).toBe('dispute_ignored');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      const view = await topUpView(t, c);
      expect(view.status).toBe('needs_review');
      expect(view.reviewReason).toContain('without a usable USD amount');
    });

    it.each([
      ['no id', { id: null }],
      ['an id with a NUL', { id: 'dp_\u0000' }],
      ['a malformed payment_intent', { payment_intent: { id: 42 } }],
      ['a malformed charge', { charge: ['ch_x'] }],
    ])('ignores a dispute with %s and debits nothing', async (_what, overrides) => {
      const c = await paid();
      const res = await deliver(
        disputeEvent(c, 'charge.dispute.created', newDisputeId(), 8500, overrides),
      );
      expect(res.body.outcome).toBe('dispute_ignored');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });

    it('matches a dispute by its charge when it names no PaymentIntent', async () => {
      const c = await paid();
      // A refund event taught us the charge id; the dispute names only the charge.
      expect(await outcome(refundedEvent(c, 0))).toBe('refund_unchanged');
      const d = newDisputeId();
      expect(
        await outcome(disputeEvent(c, 'charge.dispute.created', d, 4250, { payment_intent: null })),
      ).toBe('dispute_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
    });

    it('answers unknown_top_up for a dispute of a payment that is not ours', async () => {
      const c = await paid();
      const res = await deliver(
        disputeEvent(c, 'charge.dispute.created', newDisputeId(), 8500, {
          payment_intent: `pi_test_${randomBytes(8).toString('hex')}`,
          charge: `ch_test_${randomBytes(8).toString('hex')}`,
        }),
      );
      expect(res.body.outcome).toBe('unknown_top_up');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });
  });
});
