import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createToken, fundedAccount, gatewayHeaders, postEvent } from './helpers/api.js';
import { createTestApp, TestApp } from './helpers/test-app.js';

/** Buffers a plan touched, from EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON), nested calls included. */
const buffersOf = (plan: unknown): number => {
  const top = (plan as [{ Plan: Record<string, number> }])[0].Plan;
  return top['Shared Hit Blocks'] + top['Shared Read Blocks'];
};

/**
 * The hot functions keep one generic plan per connection, made at its first call: those plans
 * must not depend on how large the tables were then (migration 1764880000000). On a database
 * whose holds table was never analysed, with thousands of active holds on one account, an
 * event's hold is found by its request id, not by reading the account's active holds.
 */
describe('plans that do not depend on statistics', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('settles an event hold by its request id among 5,000 active holds of the account', async () => {
    const acc = await fundedAccount(t, 'Many holds', '1000.00');
    const token = await createToken(t, acc.id);
    const requestId = `plan-${randomUUID()}`;
    const auth = await t.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(t))
      .send({ key: token.key, model: 'gpt-image-2-all', requestId })
      .expect(200);
    expect(auth.body).toMatchObject({ allowed: true, hold: { amount: '0.03' } });
    // Other requests in flight on the same account and token, held as authorize holds them.
    await t.sql.query(
      `WITH h AS (
         INSERT INTO holds (request_id, account_id, token_id, model, amount, created_at, expires_at)
         SELECT 'other-' || g, $1, $2, 'gpt-image-2-all', 0.03, now(), now() + interval '1 hour'
         FROM generate_series(1, 5000) g RETURNING amount)
       UPDATE accounts SET held = held + (SELECT sum(amount) FROM h) WHERE id = $1`,
      [acc.id, token.id],
    );
    await t.sql.query(
      `UPDATE api_tokens SET held = held + 150 WHERE id = $1`, // 5,000 × 0.03
      [token.id],
    );

    // A new connection plans holds_settle_usage now, on a holds table with no statistics.
    const c = new pg.Client({ connectionString: t.databaseUrl });
    await c.connect();
    try {
      await c.query('BEGIN');
      // The first call compiles the function and makes its plan (reading the catalogs).
      await c.query(
        `SELECT * FROM holds_settle_usage(ARRAY['none']::varchar[], ARRAY[$1]::uuid[], ARRAY[$2]::uuid[], now())`,
        [token.id, acc.id],
      );
      const explained = await c.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
         SELECT * FROM holds_settle_usage(ARRAY[$1]::varchar[], ARRAY[$2]::uuid[], ARRAY[$3]::uuid[], now())`,
        [requestId, token.id, acc.id],
      );
      const settled = await c.query<{ status: string }>(
        `SELECT status FROM holds WHERE request_id = $1`,
        [requestId],
      );
      await c.query('ROLLBACK');
      expect(settled.rows[0]).toEqual({ status: 'settled' });
      // A primary-key probe and one row updated (with its index entries): a few dozen buffers
      // at most. Reading the account's active holds would touch every page of their rows.
      const pages = await t.sql.query<{ pages: string }>(
        `SELECT (pg_relation_size('holds') / current_setting('block_size')::int)::text AS pages`,
      );
      expect(Number(pages.rows[0].pages)).toBeGreaterThan(60);
      expect(buffersOf(explained.rows[0]['QUERY PLAN'])).toBeLessThan(60);
    } finally {
      await c.end();
    }

    // Through the API: the event settles exactly its own hold; the 5,000 others stay.
    await postEvent(t, {
      requestId,
      tokenId: token.id,
      model: 'gpt-image-2-all',
      statusCode: 200,
    }).expect(201);
    const after = await t.sql.query<{ status: string; active: string; held: string }>(
      `SELECT (SELECT status FROM holds WHERE request_id = $1) AS status,
              (SELECT count(*) FROM holds WHERE account_id = $2 AND status = 'active')::text AS active,
              (SELECT held::text FROM accounts WHERE id = $2) AS held`,
      [requestId, acc.id],
    );
    expect(after.rows[0]).toEqual({ status: 'settled', active: '5000', held: '150.0000000000' });
  });

  it('runs the hot functions with sequential scans off, so a plan made on small tables keeps its indexes', async () => {
    const rows = await t.sql.query<{ name: string; config: string[] }>(
      `SELECT p.proname AS name, p.proconfig AS config FROM pg_proc p
       WHERE p.proname IN ('usage_book', 'ledger_book_usage', 'authorize_facts', 'holds_place',
                           'holds_settle_usage')
       ORDER BY p.proname`,
    );
    expect(rows.rows.map((r) => r.name)).toEqual([
      'authorize_facts',
      'holds_place',
      'holds_settle_usage',
      'ledger_book_usage',
      'usage_book',
    ]);
    for (const r of rows.rows) {
      expect(r.config).toEqual(
        expect.arrayContaining(['plan_cache_mode=force_generic_plan', 'enable_seqscan=off']),
      );
    }
  });
});
