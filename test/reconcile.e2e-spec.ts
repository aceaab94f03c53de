import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { reconcile } from '../src/statements/reconcile.js';
import { createAccount, createToken, postAdjustment, postEvents } from './helpers/api.js';
import { createTestApp, TestApp } from './helpers/test-app.js';

describe('reconcile', () => {
  let t: TestApp;
  let ds: DataSource;
  let accountId: string;

  beforeAll(async () => {
    t = await createTestApp();
    ds = t.app.get(DataSource);
    accountId = (await createAccount(t, 'books')).id;
    await postAdjustment(t, accountId, 'credit-1', {
      amount: '5.00',
      reason: 'opening credit',
    }).expect(201);
    const token = await createToken(t, accountId, { name: 't' });
    const events = Array.from({ length: 20 }, (_, i) => ({
      requestId: `rec-${i}`,
      tokenId: token.id,
      model: i % 2 ? 'gpt-image-2' : 'gpt-image-2-vip',
      statusCode: i % 5 === 0 ? 500 : 200,
      usage: { inputTokens: 89, outputTokens: 1145 },
    }));
    await postEvents(t, events).expect(200);
  });

  afterAll(async () => {
    await t.close();
  });

  it('finds the books balanced after usage, skips and adjustments', async () => {
    const result = await reconcile(ds);
    expect(result.problems).toEqual([]);
    expect(result.accounts).toBe(1);
  });

  it('names the account whose balance was changed behind the ledger', async () => {
    await t.sql.query(`UPDATE accounts SET balance = balance + 0.0000000001 WHERE id = $1`, [
      accountId,
    ]);
    const result = await reconcile(ds);
    expect(result.problems.map((p) => [p.accountId, p.check])).toEqual([
      [accountId, 'balance_vs_ledger_sum'],
      [accountId, 'balance_vs_last_entry'],
    ]);
    await t.sql.query(`UPDATE accounts SET balance = balance - 0.0000000001 WHERE id = $1`, [
      accountId,
    ]);
  });

  it('names a charged event that has no ledger entry', async () => {
    const [{ id: priceId }] = (
      await t.sql.query(`SELECT id FROM price_versions WHERE model = 'gpt-image-2-vip'`)
    ).rows;
    const [{ id: tokenId }] = (await t.sql.query(`SELECT id FROM api_tokens`)).rows;
    await t.sql.query(
      `WITH reg AS (
         INSERT INTO usage_requests (key, fingerprint, account_id, recorded_at, outcome, charge)
         VALUES (usage_request_key('forged'), 0, $1, now(), 'charged', 0.03)
         RETURNING recorded_at
       )
       INSERT INTO usage_events (request_id, account_id, token_id, model, outcome, charge, group_name, ratio,
         price_version_id, price_version, occurred_at, recorded_at)
       SELECT 'forged', $1, $2, 'gpt-image-2-vip', 'charged', 0.03, 'default', 1, $3, 1, now(), reg.recorded_at FROM reg`,
      [accountId, tokenId, priceId],
    );
    const result = await reconcile(ds);
    expect(result.problems).toEqual([
      expect.objectContaining({
        accountId,
        check: 'charged_usage_without_one_ledger_entry',
        detail: expect.stringContaining('forged'),
      }),
    ]);
    await t.sql.query(`DELETE FROM usage_events WHERE request_id = 'forged'`);
    await t.sql.query(`DELETE FROM usage_requests WHERE key = usage_request_key('forged')`);
  });

  it('names a kept event that disagrees with the request register', async () => {
    await t.sql.query(
      `UPDATE usage_requests SET charge = charge + 1 WHERE key = usage_request_key('rec-1')`,
    );
    const result = await reconcile(ds);
    expect(result.problems.map((p) => [p.accountId, p.check, p.detail])).toEqual([
      [accountId, 'charged_usage_without_one_ledger_entry', expect.stringContaining('rec-1')],
      [accountId, 'event_vs_register', expect.stringContaining('rec-1')],
    ]);
    await t.sql.query(
      `UPDATE usage_requests SET charge = charge - 1 WHERE key = usage_request_key('rec-1')`,
    );
    expect((await reconcile(ds)).problems).toEqual([]);
  });

  it('refuses to change or delete a booked ledger entry', async () => {
    await expect(t.sql.query(`UPDATE ledger_entries SET amount = 0`)).rejects.toThrow(
      /append-only/,
    );
    await expect(t.sql.query(`DELETE FROM ledger_entries`)).rejects.toThrow(/append-only/);
  });
});
