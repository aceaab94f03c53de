import { MigrationInterface, QueryRunner } from 'typeorm';
import { AuthorizeFunction1764830000000 } from './1764830000000-authorize-function.js';

/**
 * authorize_facts places a hold in four statements instead of holds_place's seven when the
 * account has no expired holds to sweep: the account's held grows only where the balance
 * check passes (that UPDATE takes the account's row lock, as holds_place's first statement
 * does), the register is checked under that lock, the token's held grows only where it is
 * usable and under its spend limit, and the hold is inserted unless the request has one.
 * A step that fails undoes the ones before it and holds_place runs as before, so every
 * refusal is still answered by holds_place with its reasons. Same arguments, same answer.
 *
 * The expired holds an account or token still counts are read in expiry order, so that the
 * planner reads them through holds_active_account_expiry (account_id, expires_at), which
 * yields that order, and not through holds_active_account (account_id, created_at), which
 * costs the same when the table's statistics are thin (a young database) but reads every
 * active hold of the account to find the expired ones: 327 buffers per subquery for an
 * account with 330 active holds in the bench, against 3. holds_place looks for one expired
 * hold the same way (same answer, same steps otherwise).
 *
 * Both functions now keep one generic plan per statement and connection
 * (plan_cache_mode = force_generic_plan): their statements take the function's arguments,
 * and PostgreSQL otherwise plans them anew on every call while a custom plan looks cheaper.
 */
export class AuthorizeFastHold1764860000000 implements MigrationInterface {
  name = 'AuthorizeFastHold1764860000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION authorize_facts(bpchar, varchar, varchar, numeric, bigint, numeric, int)
      RETURNS TABLE (id uuid, account_id uuid, status varchar, expires_at timestamptz, spend_limit numeric,
                     spent numeric, held numeric, allowed_models text[], group_name varchar, ratio numeric,
                     account_status varchar, balance numeric, account_held numeric, credit_limit numeric,
                     price_version_id bigint, hold_token_id uuid, hold_active boolean, hold_amount numeric,
                     hold_expires_at timestamptz, request_recorded boolean,
                     place_locked boolean, placed boolean, balance_ok boolean, spend_ok boolean,
                     usable boolean, fresh boolean, place_balance text, place_held text,
                     place_created_at timestamptz, place_expires_at timestamptz, place_cursor_at text)
      LANGUAGE plpgsql VOLATILE
      SET plan_cache_mode = force_generic_plan
      AS $fn$
      #variable_conflict use_column
      DECLARE
        f record;
        p record;
        v_balance numeric;
        v_held numeric;
        v_created timestamptz;
        v_expires timestamptz;
      BEGIN
      SELECT t.id, t.account_id, t.status, t.expires_at, t.spend_limit, t.spent,
             t.held - COALESCE((SELECT sum(e.amount) FROM (SELECT x.amount FROM holds x
               WHERE x.account_id = t.account_id AND x.token_id = t.id AND x.status = 'active'
                 AND x.expires_at <= now() ORDER BY x.expires_at) e), 0) AS held,
             t.allowed_models, t.group_name, g.ratio, a.status AS account_status, a.balance,
             a.held - COALESCE((SELECT sum(e.amount) FROM (SELECT x.amount FROM holds x
               WHERE x.account_id = a.id AND x.status = 'active' AND x.expires_at <= now()
               ORDER BY x.expires_at) e), 0) AS account_held,
             a.credit_limit, t.held AS raw_held, a.held AS raw_account_held,
             (SELECT v.id FROM price_versions v WHERE v.model = $2 AND v.effective_from <= now()
              ORDER BY v.effective_from DESC, v.version DESC LIMIT 1) AS price_version_id,
             h.token_id AS hold_token_id, (h.status = 'active' AND h.expires_at > now()) AS hold_active,
             h.amount AS hold_amount, h.expires_at AS hold_expires_at,
             ($3 IS NOT NULL AND EXISTS (SELECT 1 FROM usage_requests u WHERE u.key = usage_request_key($3)))
               AS request_recorded
      INTO f
      FROM api_tokens t
      JOIN groups g ON g.name = t.group_name
      JOIN accounts a ON a.id = t.account_id
      LEFT JOIN holds h ON h.request_id = $3
      WHERE t.key_hash = $1;
      IF NOT FOUND THEN
        RETURN;
      END IF;
      -- The checks TokensService.authorize makes before it places a hold, on the same facts.
      IF $3 IS NOT NULL AND $4 IS NOT NULL
         AND f.status = 'active' AND (f.expires_at IS NULL OR f.expires_at > now())
         AND f.account_status = 'active'
         AND f.hold_token_id IS NULL AND NOT f.request_recorded
         AND f.balance - f.account_held + f.credit_limit > 0
         AND (f.allowed_models IS NULL OR $2 = ANY (f.allowed_models))
         AND f.price_version_id = $5 AND f.ratio = $6
         AND (f.spend_limit IS NULL OR f.spent + f.held < f.spend_limit) THEN
        -- The short way, when the account had no expired holds to sweep: each row is changed
        -- only where the check holds (the account's UPDATE takes its lock first, as
        -- holds_place does), and undone if a later step fails; then holds_place decides.
        IF f.account_held = f.raw_account_held AND f.held = f.raw_held THEN
          UPDATE accounts ac SET held = ac.held + $4
          WHERE ac.id = f.account_id AND ac.status = 'active' AND ac.balance - ac.held - $4 >= -ac.credit_limit
          RETURNING ac.balance, ac.held INTO v_balance, v_held;
          IF FOUND THEN
            IF NOT EXISTS (SELECT 1 FROM usage_requests u WHERE u.key = usage_request_key($3)) THEN
              UPDATE api_tokens tk SET held = tk.held + $4
              WHERE tk.id = f.id AND tk.account_id = f.account_id AND tk.status = 'active'
                AND (tk.expires_at IS NULL OR tk.expires_at > now())
                AND (tk.spend_limit IS NULL OR tk.spent + tk.held + $4 <= tk.spend_limit);
              IF FOUND THEN
                INSERT INTO holds (request_id, account_id, token_id, model, amount, created_at, expires_at)
                VALUES ($3, f.account_id, f.id, $2, $4, now(), now() + make_interval(secs => $7))
                ON CONFLICT (request_id) DO NOTHING
                RETURNING holds.created_at, holds.expires_at INTO v_created, v_expires;
                IF FOUND THEN
                  RETURN QUERY SELECT f.id, f.account_id, f.status::varchar, f.expires_at, f.spend_limit, f.spent,
                    f.held, f.allowed_models, f.group_name::varchar, f.ratio, f.account_status::varchar, f.balance,
                    f.account_held, f.credit_limit, f.price_version_id, f.hold_token_id, f.hold_active,
                    f.hold_amount, f.hold_expires_at, f.request_recorded,
                    true, true, true, true, true, true, v_balance::text, v_held::text,
                    v_created, v_expires, v_created::text;
                  RETURN;
                END IF;
                UPDATE api_tokens tk SET held = tk.held - $4 WHERE tk.id = f.id;
              END IF;
            END IF;
            UPDATE accounts ac SET held = ac.held - $4 WHERE ac.id = f.account_id;
          END IF;
        END IF;
        SELECT * INTO p FROM holds_place($3, f.account_id, f.id, $2, $4, $7);
        RETURN QUERY SELECT f.id, f.account_id, f.status::varchar, f.expires_at, f.spend_limit, f.spent,
          f.held, f.allowed_models, f.group_name::varchar, f.ratio, f.account_status::varchar, f.balance,
          f.account_held, f.credit_limit, f.price_version_id, f.hold_token_id, f.hold_active,
          f.hold_amount, f.hold_expires_at, f.request_recorded,
          p.locked, p.placed, p.balance_ok, p.spend_ok, p.usable, p.fresh, p.balance, p.held,
          p.created_at, p.expires_at, p.cursor_at;
      ELSE
        RETURN QUERY SELECT f.id, f.account_id, f.status::varchar, f.expires_at, f.spend_limit, f.spent,
          f.held, f.allowed_models, f.group_name::varchar, f.ratio, f.account_status::varchar, f.balance,
          f.account_held, f.credit_limit, f.price_version_id, f.hold_token_id, f.hold_active,
          f.hold_amount, f.hold_expires_at, f.request_recorded,
          NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean,
          NULL::text, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text;
      END IF;
      END
      $fn$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION holds_place(varchar, uuid, uuid, varchar, numeric, int)
      RETURNS TABLE (locked boolean, placed boolean, balance_ok boolean, spend_ok boolean, usable boolean,
                     fresh boolean, balance text, held text, created_at timestamptz, expires_at timestamptz,
                     cursor_at text)
      LANGUAGE plpgsql VOLATILE
      SET plan_cache_mode = force_generic_plan
      AS $fn$
      #variable_conflict use_column
      DECLARE
        a record;
        t record;
        swept numeric := 0;
        ok_balance boolean;
        ok_spend boolean;
        ok_usable boolean;
        ok_fresh boolean;
        v_created timestamptz;
        v_expires timestamptz;
      BEGIN
        SELECT ac.balance, ac.held, ac.credit_limit, ac.status INTO a
        FROM accounts ac WHERE ac.id = $2 FOR NO KEY UPDATE;
        IF NOT FOUND THEN
          RETURN QUERY SELECT false, false, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean,
            NULL::text, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text;
          RETURN;
        END IF;
        IF (SELECT x.expires_at FROM holds x WHERE x.account_id = $2 AND x.status = 'active' AND x.expires_at <= now()
            ORDER BY x.expires_at LIMIT 1) IS NOT NULL THEN
          WITH s AS (
            UPDATE holds x SET status = 'expired', closed_at = now()
            WHERE x.account_id = $2 AND x.status = 'active' AND x.expires_at <= now()
            RETURNING x.token_id, x.amount
          ), tsum AS (
            SELECT s.token_id, sum(s.amount) AS amount FROM s GROUP BY s.token_id
          ), ut AS (
            UPDATE api_tokens tk SET held = tk.held - tsum.amount FROM tsum WHERE tk.id = tsum.token_id
          )
          SELECT COALESCE(sum(tsum.amount), 0) INTO swept FROM tsum;
          UPDATE accounts ac SET held = ac.held - swept WHERE ac.id = $2;
          a.held := a.held - swept;
        END IF;
        SELECT tk.spent, tk.held, tk.spend_limit, tk.status, tk.expires_at INTO t
        FROM api_tokens tk WHERE tk.id = $3 AND tk.account_id = $2;
        IF NOT FOUND THEN
          RETURN QUERY SELECT false, false, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean,
            NULL::text, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text;
          RETURN;
        END IF;
        ok_balance := a.balance - a.held - $5 >= -a.credit_limit;
        ok_spend := t.spend_limit IS NULL OR t.spent + t.held + $5 <= t.spend_limit;
        ok_usable := a.status = 'active' AND t.status = 'active' AND (t.expires_at IS NULL OR t.expires_at > now());
        ok_fresh := NOT EXISTS (SELECT 1 FROM holds x WHERE x.request_id = $1)
          AND NOT EXISTS (SELECT 1 FROM usage_requests u WHERE u.key = usage_request_key($1));
        IF ok_balance AND ok_spend AND ok_usable AND ok_fresh THEN
          INSERT INTO holds (request_id, account_id, token_id, model, amount, created_at, expires_at)
          VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6))
          ON CONFLICT (request_id) DO NOTHING
          RETURNING holds.created_at, holds.expires_at INTO v_created, v_expires;
          IF FOUND THEN
            UPDATE accounts ac SET held = ac.held + $5 WHERE ac.id = $2;
            UPDATE api_tokens tk SET held = tk.held + $5 WHERE tk.id = $3;
            RETURN QUERY SELECT true, true, ok_balance, ok_spend, ok_usable, ok_fresh, a.balance::text,
              (a.held + $5)::text, v_created, v_expires, v_created::text;
            RETURN;
          END IF;
        END IF;
        RETURN QUERY SELECT true, false, ok_balance, ok_spend, ok_usable, ok_fresh, a.balance::text,
          a.held::text, NULL::timestamptz, NULL::timestamptz, NULL::text;
      END
      $fn$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `DROP FUNCTION authorize_facts(bpchar, varchar, varchar, numeric, bigint, numeric, int)`,
    );
    // authorize_facts and holds_place as migration 1764830000000 made them.
    await new AuthorizeFunction1764830000000().up(q);
  }
}
