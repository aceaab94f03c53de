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
  expectLedgerConsistent,
  newRefundId,
  paidEvent,
  paidTopUp,
  PendingTopUp,
  refundedEvent,
  refundUpdatedEvent,
  topUpView,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { TestApp } from './helpers/test-app.js';

/*
 * Issue 10, item 2: a refund that fails or is canceled (charge.refund.updated, refund.updated,
 * refund.failed) gives back the credit it took, once per refund; refunds above what was paid
 * flag the top-up needs_review and never take more than its credit.
 */

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

describe('Stripe refund failures and over-refunds', () => {
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

  const newAccount = () => createAccount(t, `Refunds ${randomBytes(3).toString('hex')}`);
  const paid = async (credit = '100.00'): Promise<PendingTopUp> =>
    paidTopUp(t, stub, await newAccount(), credit, SECRET);

  const deliver = async (event: Record<string, unknown>): Promise<Response> => {
    const res = await deliverWebhook(t, event, SECRET);
    expect(res.status).toBe(200);
    return res;
  };
  const outcome = async (event: Record<string, unknown>): Promise<string> =>
    (await deliver(event)).body.outcome as string;

  const refundEntries = async (c: PendingTopUp): Promise<string[]> =>
    (
      await t.sql.query<{ amount: string }>(
        `SELECT amount::text AS amount FROM ledger_entries
         WHERE account_id = $1 AND type = 'refund' ORDER BY id`,
        [c.accountId],
      )
    ).rows.map((r) => new Decimal(r.amount).toFixed());

  describe('a refund that fails', () => {
    it('gives back the credit a full refund took, once', async () => {
      const c = await paid();
      const refund = newRefundId();
      expect(await outcome(refundedEvent(c, 8500))).toBe('refund_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');

      const failed = refundUpdatedEvent(c, refund, 8500, 'failed');
      expect(await outcome(failed)).toBe('refund_reversed');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await topUpView(t, c)).toMatchObject({
        status: 'paid',
        refundedCash: '0.00',
        refundedCredit: '0.00',
      });
      // Replayed, re-sent under a new id, reported by the newer event types: nothing more.
      expect((await deliver(failed)).body.duplicate).toBe(true);
      expect(await outcome(refundUpdatedEvent(c, refund, 8500, 'failed'))).toBe('refund_unchanged');
      expect(
        await outcome(refundUpdatedEvent(c, refund, 8500, 'failed', {}, 'refund.failed')),
      ).toBe('refund_unchanged');
      expect(
        await outcome(refundUpdatedEvent(c, refund, 8500, 'failed', {}, 'refund.updated')),
      ).toBe('refund_unchanged');
      // Stripe's running total re-sent later takes nothing again.
      expect(await outcome(refundedEvent(c, 8500))).toBe('refund_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await refundEntries(c)).toEqual(['-100', '100']);
      await expectLedgerConsistent(t, c.accountId);
    });

    it('gives back a canceled refund the same way', async () => {
      const c = await paid();
      await outcome(refundedEvent(c, 4250));
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await outcome(refundUpdatedEvent(c, newRefundId(), 4250, 'canceled'))).toBe(
        'refund_reversed',
      );
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
    });

    it('gives back only the failed one of two partial refunds', async () => {
      const c = await paid();
      const [first, second] = [newRefundId(), newRefundId()];
      await outcome(refundedEvent(c, 1700)); // $17 of $85: 20 credit
      await outcome(refundedEvent(c, 1700 + 2550)); // + $25.50: 30 more
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      expect(await outcome(refundUpdatedEvent(c, first, 1700, 'succeeded'))).toBe(
        'refund_unchanged',
      );
      expect(await outcome(refundUpdatedEvent(c, second, 2550, 'failed'))).toBe('refund_reversed');
      expect(await balanceOf(t, c.consoleKey)).toBe('80.00');
      expect(await topUpView(t, c)).toMatchObject({
        refundedCash: '17.00',
        refundedCredit: '20.00',
      });
      // A later refund of the rest: Stripe's running total counts the failed one too.
      expect(await outcome(refundedEvent(c, 4250 + 6800))).toBe('refund_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      await expectLedgerConsistent(t, c.accountId);
    });

    it('never debits a refund whose failure was reported before its running total', async () => {
      const c = await paid();
      const refund = newRefundId();
      expect(await outcome(refundUpdatedEvent(c, refund, 8500, 'failed'))).toBe('refund_recorded');
      expect(await outcome(refundedEvent(c, 8500))).toBe('refund_unchanged');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await refundEntries(c)).toEqual([]);
    });

    it('counts a failure reported before the payment once the payment is credited', async () => {
      const c = await createTopUp(t, stub, await newAccount(), '100.00');
      expect(await outcome(refundUpdatedEvent(c, newRefundId(), 4250, 'failed'))).toBe(
        'unknown_top_up',
      );
      expect(await outcome(refundedEvent(c, 4250))).toBe('refund_recorded');
      expect(await outcome(paidEvent(c))).toBe('credited');
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await topUpView(t, c)).toMatchObject({ refundedCash: '0.00', refundedCredit: '0.00' });
    });

    it('changes nothing for a pending or succeeded refund', async () => {
      const c = await paid();
      await outcome(refundedEvent(c, 8500));
      for (const status of ['pending', 'succeeded', 'requires_action']) {
        expect(await outcome(refundUpdatedEvent(c, newRefundId(), 8500, status))).toBe(
          'refund_unchanged',
        );
      }
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });

    // Protects the race of concurrent reports of one refund's failure: the refund's row and
    // the top-up's are locked, and the row remembers the failure.
    it('gives the credit back once when 20 failure reports arrive at once', async () => {
      const c = await paid();
      await outcome(refundedEvent(c, 8500));
      const refund = newRefundId();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          deliver(
            refundUpdatedEvent(
              c,
              refund,
              8500,
              'failed',
              {},
              ['charge.refund.updated', 'refund.failed', 'refund.updated'][i % 3],
            ),
          ),
        ),
      );
      const outcomes = results.map((r) => r.body.outcome as string);
      expect(outcomes.filter((o) => o === 'refund_reversed')).toHaveLength(1);
      expect(await balanceOf(t, c.consoleKey)).toBe('100.00');
      expect(await refundEntries(c)).toEqual(['-100', '100']);
    });

    it.each([
      ['a string amount', { amount: '8500' }],
      ['a negative amount', { amount: -8500 }],
      ['another currency', { currency: 'eur' }],
      ['no id', { id: null }],
      ['a malformed payment_intent', { payment_intent: 42 }],
    ])('ignores a failed refund with %s', async (_what, overrides) => {
      const c = await paid();
      await outcome(refundedEvent(c, 8500));
      expect(await outcome(refundUpdatedEvent(c, newRefundId(), 8500, 'failed', overrides))).toBe(
        'refund_ignored',
      );
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
    });
  });

  describe('refunds above what was paid', () => {
    it('flags the top-up needs_review and takes back the credit, never more', async () => {
      const c = await paid();
      expect(await outcome(refundedEvent(c, 20_000))).toBe('refund_debited');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      const view = await topUpView(t, c);
      expect(view).toMatchObject({
        status: 'needs_review',
        refundedCash: '200.00',
        refundedCredit: '100.00',
      });
      expect(view.reviewReason).toBe('refunds of 200.00 USD exceed the 85.00 USD paid');
      expect(await refundEntries(c)).toEqual(['-100']);

      // In the admins' queue; crediting it again is refused, dismissing closes it as paid.
      const queue = await t.http
        .get('/v1/admin/top-ups')
        .query({ status: 'needs_review' })
        .set(...adminHeaders(t))
        .expect(200);
      expect((queue.body.data as { id: string }[]).map((x) => x.id)).toContain(c.topUpId);
      const credit = await t.http
        .post(`/v1/admin/top-ups/${c.topUpId}/resolve`)
        .set(...adminHeaders(t))
        .send({ action: 'credit', note: 'again?' });
      expect(credit.status).toBe(409);
      const dismissed = await t.http
        .post(`/v1/admin/top-ups/${c.topUpId}/resolve`)
        .set(...adminHeaders(t))
        .send({ action: 'dismiss', note: 'Stripe reconciled it' })
        .expect(200);
      expect(dismissed.body).toMatchObject({ status: 'paid', resolution: { action: 'dismiss' } });
      // Still never more than the credit, and never flagged again after a final decision.
      expect(await outcome(refundedEvent(c, 30_000))).toBe('refund_unchanged');
      expect((await topUpView(t, c)).status).toBe('paid');
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      await expectLedgerConsistent(t, c.accountId);
    });

    it('does not flag a refund of exactly the amount paid', async () => {
      const c = await paid();
      await outcome(refundedEvent(c, 8500));
      expect((await topUpView(t, c)).status).toBe('paid');
    });

    it('keeps refunding a flagged top-up correctly when a refund then fails', async () => {
      const c = await paid();
      await outcome(refundedEvent(c, 8500 + 4250));
      expect((await topUpView(t, c)).status).toBe('needs_review');
      // What is left refunded (85.00) still takes back the whole credit.
      expect(await outcome(refundUpdatedEvent(c, newRefundId(), 4250, 'failed'))).toBe(
        'refund_recorded',
      );
      expect(await balanceOf(t, c.consoleKey)).toBe('0.00');
      expect(await outcome(refundUpdatedEvent(c, newRefundId(), 4250, 'failed'))).toBe(
        'refund_reversed',
      );
      expect(await balanceOf(t, c.consoleKey)).toBe('50.00');
      await expectLedgerConsistent(t, c.accountId);
    });
  });
});
