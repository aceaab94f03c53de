import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ingestion in one round trip. usage_book writes a list of events the caller priced before
 * taking any lock, with the token contexts (account, group, ratio) and price versions an
 * earlier write saw, in one call outside an explicit transaction (so the call is the whole
 * transaction: no BEGIN, no COMMIT round trips). It locks the accounts in id order (as
 * UsageRepository.lockForUsage does), then checks that every token still belongs to that
 * account and group at that ratio and that every price version is still the one in force;
 * if any is not, it writes nothing and answers one row with a null request_id, and the caller
 * writes the events the long way (lock, price, insert, book), which reads the contexts anew.
 * Otherwise it does what UsageRepository.insertNew and the ledger's booking do, in the same
 * order: register the new request ids, insert their events, settle their holds, add token
 * spend and daily roll-ups, then book one ledger entry per charged event through
 * ledger_book_usage. It answers the request id, event id and recording time of each event
 * it inserted; a request id already registered is skipped (the caller reads it back).
 *
 * ledger_book_usage is the ledger's: it moves the locked accounts' balances and appends the
 * entries, each with the running balance in input order, in one statement.
 *
 * The request key (usage_request_key) is computed once per event, and the verification probes
 * each distinct token once.
 *
 * Both run with plan_cache_mode = force_generic_plan: their statements take arrays, and
 * PostgreSQL otherwise re-plans them on every call (a custom plan keeps looking cheaper).
 */
export class UsageBookFunction1764850000000 implements MigrationInterface {
  name = 'UsageBookFunction1764850000000';

  async up(q: QueryRunner): Promise<void> {
    // Declared IMMUTABLE, it calls convert_to (STABLE), so PostgreSQL never inlined it and ran
    // it as a function call of its own each time; STABLE is what it is, and it inlines.
    await q.query(`ALTER FUNCTION usage_request_key(text) STABLE`);
    await q.query(`
      CREATE FUNCTION ledger_book_usage(p_account_id uuid[], p_amount numeric[], p_reference text[],
                                        p_model varchar[], p_at timestamptz)
      RETURNS void
      LANGUAGE plpgsql VOLATILE
      SET plan_cache_mode = force_generic_plan
      AS $fn$
      BEGIN
        WITH e AS (
          SELECT * FROM unnest(p_account_id, p_amount, p_reference, p_model) WITH ORDINALITY
            AS e(account_id, amount, reference, model, ord)
        ), moved AS (
          UPDATE accounts a SET balance = a.balance + d.delta
          FROM (SELECT e.account_id, sum(e.amount) AS delta FROM e GROUP BY e.account_id) d
          WHERE a.id = d.account_id
          RETURNING a.id, a.balance - d.delta AS opening
        )
        INSERT INTO ledger_entries (account_id, type, amount, balance_after, description, reference, model, created_at)
        SELECT e.account_id, 'usage', e.amount,
               m.opening + sum(e.amount) OVER (PARTITION BY e.account_id ORDER BY e.ord), '', e.reference,
               e.model, p_at
        FROM e JOIN moved m ON m.id = e.account_id
        ORDER BY e.ord;
      END
      $fn$`);
    await q.query(`
      CREATE FUNCTION usage_book(p_request_id varchar[], p_fingerprint text[], p_account_id uuid[],
        p_token_id uuid[], p_model varchar[], p_outcome varchar[], p_reason varchar[], p_charge numeric[],
        p_group_name varchar[], p_ratio numeric[], p_price_version_id bigint[], p_price_version int[],
        p_occurred_at timestamptz[], p_input_tokens bigint[], p_output_tokens bigint[], p_images int[],
        p_lines text[])
      RETURNS TABLE (request_id varchar, id bigint, recorded_at timestamptz)
      LANGUAGE plpgsql VOLATILE
      SET plan_cache_mode = force_generic_plan
      AS $fn$
      #variable_conflict use_column
      DECLARE
        v_at timestamptz;
        r_request_id varchar[];
        r_id bigint[];
        b_account_id uuid[];
        b_amount numeric[];
        b_reference text[];
        b_model varchar[];
      BEGIN
        PERFORM 1 FROM accounts a WHERE a.id = ANY (p_account_id) ORDER BY a.id FOR NO KEY UPDATE;
        IF EXISTS (
             SELECT 1 FROM (SELECT DISTINCT * FROM unnest(p_token_id, p_account_id, p_group_name, p_ratio)
                            AS x(token_id, account_id, group_name, ratio)) v
             LEFT JOIN api_tokens t ON t.id = v.token_id
             LEFT JOIN groups g ON g.name = t.group_name
             WHERE t.account_id IS DISTINCT FROM v.account_id OR t.group_name IS DISTINCT FROM v.group_name
                OR g.ratio IS DISTINCT FROM v.ratio)
           OR EXISTS (
             SELECT 1 FROM (SELECT DISTINCT x.model, x.id FROM unnest(p_model, p_price_version_id) AS x(model, id)) v
             WHERE v.id IS DISTINCT FROM (
               SELECT pv.id FROM price_versions pv WHERE pv.model = v.model AND pv.effective_from <= now()
               ORDER BY pv.effective_from DESC, pv.version DESC LIMIT 1)) THEN
          RETURN QUERY SELECT NULL::varchar, NULL::bigint, NULL::timestamptz;
          RETURN;
        END IF;
        -- Read after every lock was taken: events, entries and roll-ups share it.
        v_at := clock_timestamp();
        WITH v AS (
          SELECT x.*, usage_request_key(x.request_id) AS key FROM unnest(p_request_id, p_fingerprint, p_account_id, p_token_id, p_model, p_outcome, p_reason,
            p_charge, p_group_name, p_ratio, p_price_version_id, p_price_version, p_occurred_at, p_input_tokens,
            p_output_tokens, p_images, p_lines) WITH ORDINALITY
            AS x(request_id, fingerprint, account_id, token_id, model, outcome, reason, charge, group_name, ratio,
                 price_version_id, price_version, occurred_at, input_tokens, output_tokens, images, lines, ord)
        ), registered AS (
          INSERT INTO usage_requests AS u (key, fingerprint, account_id, recorded_at, outcome, charge)
          SELECT v.key, ('x' || v.fingerprint)::bit(64)::bigint, v.account_id,
                 v_at, v.outcome::"char", v.charge
          FROM v
          ON CONFLICT (key) DO NOTHING
          RETURNING u.key
        ), ins AS (
          INSERT INTO usage_events AS e (request_id, account_id, token_id, model, outcome, reason, charge, group_name,
            ratio, price_version_id, price_version, occurred_at, input_tokens, output_tokens, images, lines, recorded_at)
          SELECT v.request_id, v.account_id, v.token_id, v.model, v.outcome, v.reason, v.charge, v.group_name, v.ratio,
                 v.price_version_id, v.price_version, v.occurred_at, v.input_tokens, v.output_tokens, v.images,
                 v.lines::bigint[], v_at
          FROM v JOIN registered r ON r.key = v.key
          RETURNING e.id, e.request_id, e.account_id, e.token_id, e.model, e.outcome, e.charge, e.input_tokens,
                    e.output_tokens, e.images
        ), settled AS (
          -- The event settles its own hold (same request id, token and account); the account
          -- is locked, so nobody else moves the hold. IS NOT DISTINCT FROM (the same, the
          -- columns being NOT NULL) leaves only the request id to look holds up by: its primary
          -- key, not the account's active holds one by one, whatever the statistics say.
          UPDATE holds h SET status = CASE WHEN h.expires_at <= v_at THEN 'expired' ELSE 'settled' END,
                 closed_at = v_at
          FROM ins WHERE h.request_id = ins.request_id
            AND h.token_id IS NOT DISTINCT FROM ins.token_id AND h.account_id IS NOT DISTINCT FROM ins.account_id
            AND h.status = 'active'
          RETURNING h.account_id, h.token_id, h.amount
        ), unheld AS (
          UPDATE accounts a SET held = a.held - x.amount
          FROM (SELECT s.account_id, SUM(s.amount) AS amount FROM settled s GROUP BY s.account_id) x
          WHERE a.id = x.account_id
        ), spend AS (
          UPDATE api_tokens t SET spent = t.spent + s.amount, held = t.held - COALESCE(x.amount, 0),
                 last_used_at = v_at
          FROM (SELECT i.token_id, COALESCE(SUM(i.charge) FILTER (WHERE i.outcome = 'charged'), 0) AS amount
                FROM ins i GROUP BY i.token_id) s
          LEFT JOIN (SELECT st.token_id, SUM(st.amount) AS amount FROM settled st GROUP BY st.token_id) x
            ON x.token_id = s.token_id
          WHERE t.id = s.token_id
        ), daily AS (
          INSERT INTO usage_daily AS d (account_id, day, model, requests, charged, skipped, review, input_tokens,
            output_tokens, images, charge)
          SELECT i.account_id, (v_at AT TIME ZONE 'UTC')::date, i.model, COUNT(*),
                 COUNT(*) FILTER (WHERE i.outcome = 'charged'), COUNT(*) FILTER (WHERE i.outcome = 'skipped'),
                 COUNT(*) FILTER (WHERE i.outcome = 'review'),
                 SUM(i.input_tokens), SUM(i.output_tokens),
                 COALESCE(SUM(i.images) FILTER (WHERE i.outcome = 'charged'), 0),
                 COALESCE(SUM(i.charge) FILTER (WHERE i.outcome = 'charged'), 0)
          FROM ins i GROUP BY i.account_id, i.model
          ON CONFLICT (account_id, day, model) DO UPDATE SET
            requests = d.requests + EXCLUDED.requests,
            charged = d.charged + EXCLUDED.charged,
            skipped = d.skipped + EXCLUDED.skipped,
            review = d.review + EXCLUDED.review,
            input_tokens = d.input_tokens + EXCLUDED.input_tokens,
            output_tokens = d.output_tokens + EXCLUDED.output_tokens,
            images = d.images + EXCLUDED.images,
            charge = d.charge + EXCLUDED.charge
        )
        SELECT array_agg(ins.request_id), array_agg(ins.id),
               array_agg(ins.account_id ORDER BY v.ord) FILTER (WHERE ins.outcome = 'charged'),
               array_agg(-ins.charge ORDER BY v.ord) FILTER (WHERE ins.outcome = 'charged'),
               array_agg(ins.request_id::text ORDER BY v.ord) FILTER (WHERE ins.outcome = 'charged'),
               array_agg(ins.model ORDER BY v.ord) FILTER (WHERE ins.outcome = 'charged')
        INTO r_request_id, r_id, b_account_id, b_amount, b_reference, b_model
        FROM ins JOIN v ON v.request_id = ins.request_id;
        -- Every charged event gets exactly one ledger entry, even a zero one.
        IF b_account_id IS NOT NULL THEN
          PERFORM ledger_book_usage(b_account_id, b_amount, b_reference, b_model, v_at);
        END IF;
        RETURN QUERY SELECT x.request_id, x.id, v_at FROM unnest(r_request_id, r_id) AS x(request_id, id);
      END
      $fn$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION usage_request_key(text) IMMUTABLE`);
    await q.query(`
      DROP FUNCTION usage_book(varchar[], text[], uuid[], uuid[], varchar[], varchar[], varchar[], numeric[],
        varchar[], numeric[], bigint[], int[], timestamptz[], bigint[], bigint[], int[], text[])`);
    await q.query(
      `DROP FUNCTION ledger_book_usage(uuid[], numeric[], text[], varchar[], timestamptz)`,
    );
  }
}
