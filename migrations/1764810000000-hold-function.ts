import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * authorize places a hold in one round trip: holds_place locks the account row, then (in a
 * fresh snapshot: a VOLATILE function takes one per statement) sweeps the account's
 * expired holds, checks balance, credit and spend limits, inserts the hold and moves both
 * held sums, in one statement. Before, the same work took BEGIN, the lock, the statement and
 * COMMIT: four round trips. PL/pgSQL, not SQL: it keeps the statement's plan per connection
 * (a SQL-language function is planned again at every call). HoldsRepository.place calls it;
 * a change to the statement is a new migration that replaces the function.
 */
export class HoldFunction1764810000000 implements MigrationInterface {
  name = 'HoldFunction1764810000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION holds_place(varchar, uuid, uuid, varchar, numeric, int)
      RETURNS TABLE (locked boolean, placed boolean, balance_ok boolean, spend_ok boolean, usable boolean,
                     fresh boolean, balance text, held text, created_at timestamptz, expires_at timestamptz,
                     cursor_at text)
      LANGUAGE plpgsql VOLATILE
      AS $fn$
      #variable_conflict use_column
      BEGIN
      PERFORM 1 FROM accounts WHERE id = $2 FOR NO KEY UPDATE;
      RETURN QUERY
      WITH swept AS (
         UPDATE holds SET status = 'expired', closed_at = now()
         WHERE account_id = $2 AND status = 'active' AND expires_at <= now()
         RETURNING token_id, amount
       ), s AS (
         SELECT COALESCE(sum(amount), 0) AS total FROM swept
       ), tsum AS (
         SELECT token_id, sum(amount) AS amount FROM swept GROUP BY token_id
       ), chk AS (
         SELECT a.balance, a.held - s.total AS held,
                a.balance - (a.held - s.total) - $5::numeric >= -a.credit_limit AS balance_ok,
                (t.spend_limit IS NULL
                  OR t.spent + t.held - COALESCE((SELECT amount FROM tsum WHERE token_id = t.id), 0) + $5::numeric
                     <= t.spend_limit) AS spend_ok,
                (a.status = 'active' AND t.status = 'active' AND (t.expires_at IS NULL OR t.expires_at > now())) AS usable,
                NOT EXISTS (SELECT 1 FROM holds WHERE request_id = $1)
                  AND NOT EXISTS (SELECT 1 FROM usage_requests WHERE key = usage_request_key($1)) AS fresh
         FROM accounts a JOIN api_tokens t ON t.account_id = a.id, s
         WHERE a.id = $2 AND t.id = $3
       ), ins AS (
         INSERT INTO holds (request_id, account_id, token_id, model, amount, created_at, expires_at)
         SELECT $1, $2, $3, $4, $5::numeric, now(), now() + make_interval(secs => $6::int)
         FROM chk WHERE balance_ok AND spend_ok AND usable AND fresh
         ON CONFLICT (request_id) DO NOTHING
         RETURNING amount, created_at, expires_at
       ), ua AS (
         UPDATE accounts a SET held = a.held - s.total + COALESCE((SELECT amount FROM ins), 0)
         FROM s WHERE a.id = $2 AND (s.total > 0 OR EXISTS (SELECT 1 FROM ins))
       ), ut AS (
         UPDATE api_tokens t
         SET held = t.held - COALESCE(k.swept, 0) + CASE WHEN t.id = $3 THEN COALESCE((SELECT amount FROM ins), 0) ELSE 0 END
         FROM (SELECT COALESCE(tsum.token_id, i.token_id) AS token_id, tsum.amount AS swept
               FROM tsum FULL JOIN (SELECT $3::uuid AS token_id FROM ins) i ON i.token_id = tsum.token_id) k
         WHERE t.id = k.token_id
       )
       SELECT chk.balance IS NOT NULL AS locked, EXISTS (SELECT 1 FROM ins) AS placed, chk.balance_ok, chk.spend_ok, chk.usable, chk.fresh,
              chk.balance::text AS balance, (chk.held + COALESCE((SELECT amount FROM ins), 0))::text AS held,
              (SELECT created_at FROM ins), (SELECT expires_at FROM ins), (SELECT created_at::text FROM ins) AS cursor_at
       FROM (SELECT 1) one LEFT JOIN chk ON true;
      END
      $fn$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION holds_place(varchar, uuid, uuid, varchar, numeric, int)`);
  }
}
