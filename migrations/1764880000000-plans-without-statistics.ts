import { MigrationInterface, QueryRunner } from 'typeorm';
import { replaceInFunction, USAGE_BOOK } from './function-source.js';

/** usage_book's settlement of its events' holds, as migration 1764850000000 wrote it. */
const SETTLE_BY_JOIN = `          -- The event settles its own hold (same request id, token and account); the account
          -- is locked, so nobody else moves the hold. IS NOT DISTINCT FROM (the same, the
          -- columns being NOT NULL) leaves only the request id to look holds up by: its primary
          -- key, not the account's active holds one by one, whatever the statistics say.
          UPDATE holds h SET status = CASE WHEN h.expires_at <= v_at THEN 'expired' ELSE 'settled' END,
                 closed_at = v_at
          FROM ins WHERE h.request_id = ins.request_id
            AND h.token_id IS NOT DISTINCT FROM ins.token_id AND h.account_id IS NOT DISTINCT FROM ins.account_id
            AND h.status = 'active'
          RETURNING h.account_id, h.token_id, h.amount`;

/** The same settlement through holds_settle_usage, one primary-key probe per event. */
const SETTLE_BY_FUNCTION = `          -- The event settles its own hold (same request id, token and account); the account
          -- is locked, so nobody else moves the hold. holds_settle_usage looks each one up by
          -- its request id (migration 1764880000000).
          SELECT s.account_id, s.token_id, s.amount
          FROM holds_settle_usage(ARRAY(SELECT i.request_id FROM ins i ORDER BY i.id),
                                  ARRAY(SELECT i.token_id FROM ins i ORDER BY i.id),
                                  ARRAY(SELECT i.account_id FROM ins i ORDER BY i.id), v_at) s`;

/** The hot functions, by signature. */
const HOT_FUNCTIONS = [
  USAGE_BOOK,
  'ledger_book_usage(uuid[], numeric[], text[], varchar[], timestamptz)',
  'authorize_facts(bpchar, varchar, varchar, numeric, bigint, numeric, int)',
  'holds_place(varchar, uuid, uuid, varchar, numeric, int)',
];

/**
 * Plans that stay right whatever the statistics were when they were made. The hot functions
 * keep one generic plan per statement and connection (plan_cache_mode = force_generic_plan),
 * made at the connection's first call and kept until the tables' statistics change. Made on a
 * young database, or where autovacuum is off (as on the bench machine), those plans took
 * tables for empty that had grown since:
 *
 * - usage_book settled an event's hold by hashing every active hold (a bitmap scan of the
 *   partial index holds_active_account_expiry): 30,000 active holds read for one event, 6.9 ms
 *   (auto_explain on a bench database). Its settlement is now holds_settle_usage, whose only
 *   way to a hold is a nested loop over the events probing holds_pkey by request id: hash and
 *   merge joins and sequential scans are off in it, and it asks for `closed_at IS NULL`, which
 *   the holds_closed check makes the same as `status = 'active'` but which no partial index's
 *   predicate matches, so no plan can read the active holds one by one instead.
 * - One of the bench service's connections ran usage_book's token update as a hash join over a
 *   sequential scan of api_tokens, planned while the table was a few pages: after 15,000 row
 *   versions it read them all for every event (20% of PostgreSQL's CPU in the open loop of
 *   events, perf). The hot functions now run with enable_seqscan = off: where an index fits, a
 *   plan uses it.
 */
export class PlansWithoutStatistics1764880000000 implements MigrationInterface {
  name = 'PlansWithoutStatistics1764880000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION holds_settle_usage(p_request_id varchar[], p_token_id uuid[], p_account_id uuid[],
                                         p_at timestamptz)
      RETURNS TABLE (account_id uuid, token_id uuid, amount numeric)
      LANGUAGE plpgsql VOLATILE ROWS 10
      SET plan_cache_mode = force_generic_plan
      SET enable_hashjoin = off
      SET enable_mergejoin = off
      SET enable_seqscan = off
      AS $fn$
      #variable_conflict use_column
      BEGIN
        -- Settles the active hold of each request id, if it has one for that token and account,
        -- as expired when its time ran out. IS NOT DISTINCT FROM and closed_at IS NULL (the
        -- same as status = 'active', by the holds_closed check) leave the request id as the
        -- only way to find a hold.
        RETURN QUERY
        UPDATE holds h SET status = CASE WHEN h.expires_at <= p_at THEN 'expired' ELSE 'settled' END,
               closed_at = p_at
        FROM unnest(p_request_id, p_token_id, p_account_id) AS e(request_id, token_id, account_id)
        WHERE h.request_id = e.request_id
          AND h.token_id IS NOT DISTINCT FROM e.token_id AND h.account_id IS NOT DISTINCT FROM e.account_id
          AND h.closed_at IS NULL
        RETURNING h.account_id, h.token_id, h.amount;
      END
      $fn$`);
    await replaceInFunction(q, USAGE_BOOK, SETTLE_BY_JOIN, SETTLE_BY_FUNCTION);
    for (const f of HOT_FUNCTIONS) await q.query(`ALTER FUNCTION ${f} SET enable_seqscan = off`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const f of HOT_FUNCTIONS) await q.query(`ALTER FUNCTION ${f} RESET enable_seqscan`);
    await replaceInFunction(q, USAGE_BOOK, SETTLE_BY_FUNCTION, SETTLE_BY_JOIN);
    await q.query(`DROP FUNCTION holds_settle_usage(varchar[], uuid[], uuid[], timestamptz)`);
  }
}
