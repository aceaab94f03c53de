import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Raw usage events in monthly partitions, in lean rows, with a permanent request register.
 *
 * - `usage_events` becomes a table partitioned by `recorded_at` (UTC months, one table each:
 *   usage_events_2026_12). A month can be dropped whole (USAGE_RETENTION_MONTHS) while the
 *   roll-ups (usage_daily), the ledger and statements stay exact: none of them reads raw events.
 * - `usage_requests` is the register that makes a request id count once, forever: one small
 *   row per request id (a 16-byte key, the body's 16-byte fingerprint, where the event lives,
 *   how it ended). It is never dropped, so a replay of an event whose month is gone is still
 *   a duplicate (or a 409 with another body). PostgreSQL cannot keep a unique index across
 *   partitions; this table is that index.
 * - Rows keep what explains a charge and nothing that can be derived: the raw event (jsonb)
 *   and the stored breakdown (jsonb) go. The breakdown is rebuilt exactly from the price
 *   version (immutable), the ratio and the billed quantities: the token counts already stored,
 *   plus `lines` only when an event's tokens did not split the default way.
 * - The ledger: usage entries are unique through the register (booked in the same statement
 *   as the event), so the (type, reference) unique index covers the other types only; the
 *   (account_id, id) index goes, since an account's entries are in the same order by
 *   (created_at, id) as by id (every booking is dated after its account lock); a usage
 *   entry stores its model, and its description ("<model> request <reference>") is derived.
 * - Columns in an order that leaves no alignment padding (fixed-width widest first), and the
 *   register's 16-byte values in uuid columns (no length header).
 */
export class UsagePartitions1764800000000 implements MigrationInterface {
  name = 'UsagePartitions1764800000000';

  async up(q: QueryRunner): Promise<void> {
    // The register's key: the first 16 bytes of SHA-256 of the request id, in a uuid (16 bytes,
    // no length header). Two different ids sharing a key is a 2^-64 event at four billion ids;
    // the key is 16 bytes, not up to 200.
    await q.query(`
      CREATE FUNCTION usage_request_key(request_id text) RETURNS uuid
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $$ SELECT encode(substring(sha256(convert_to(request_id, 'UTF8')) FROM 1 FOR 16), 'hex')::uuid $$`);

    await q.query(`ALTER TABLE usage_events RENAME TO usage_events_flat`);
    await q.query(`ALTER INDEX usage_events_review RENAME TO usage_events_flat_review`);
    await q.query(
      `ALTER INDEX usage_events_account_recorded RENAME TO usage_events_flat_account_recorded`,
    );
    await q.query(
      `ALTER TABLE usage_events_flat RENAME CONSTRAINT usage_events_request_id_key TO usage_events_flat_request_id_key`,
    );
    await q.query(
      `ALTER TABLE usage_events_flat RENAME CONSTRAINT usage_events_pkey TO usage_events_flat_pkey`,
    );

    await q.query(`
      CREATE TABLE usage_events (
        -- Fixed-width columns first, widest first: no alignment padding between them.
        id bigint NOT NULL DEFAULT nextval('usage_events_id_seq'),
        price_version_id bigint NOT NULL,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        reviewed_at timestamptz,
        input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
        output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
        account_id uuid NOT NULL,
        token_id uuid NOT NULL,
        images integer NOT NULL DEFAULT 0 CHECK (images >= 0),
        price_version integer NOT NULL,
        request_id varchar(200) NOT NULL,
        model varchar(128) NOT NULL,
        outcome varchar(16) NOT NULL CHECK (outcome IN ('charged', 'skipped', 'review', 'voided')),
        reason varchar(32) CHECK (reason IN ('moderated', 'upstream_error', 'timeout', 'no_output', 'above_review_limit')),
        charge numeric(38,10) NOT NULL CHECK (charge >= 0),
        group_name varchar(64) NOT NULL,
        ratio numeric(20,10) NOT NULL,
        -- Billed token quantities per breakdown line (pricing linesFor order) when they are
        -- not the default split (all input as text, all output as image); else null.
        lines bigint[],
        CONSTRAINT usage_events_outcome_reason CHECK (
          (outcome = 'charged' AND reason IS NULL)
          OR (outcome = 'skipped' AND reason IN ('moderated', 'upstream_error', 'timeout', 'no_output') AND charge = 0)
          OR (outcome IN ('review', 'voided') AND reason = 'above_review_limit')
        )
      ) PARTITION BY RANGE (recorded_at)`);
    await q.query(`ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id`);
    await q.query(
      `CREATE INDEX usage_events_account_recorded ON usage_events (account_id, recorded_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX usage_events_review ON usage_events (recorded_at DESC, id DESC) WHERE outcome = 'review'`,
    );

    // One partition per UTC month. Any instance may call it (the service keeps the next
    // months ready); the advisory lock keeps two callers from racing on the catalog.
    await q.query(`
      CREATE FUNCTION usage_events_add_month(month date) RETURNS text LANGUAGE plpgsql AS $$
      DECLARE
        first timestamptz := date_trunc('month', month)::timestamp AT TIME ZONE 'UTC';
        part text := 'usage_events_' || to_char(month, 'YYYY_MM');
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('usage_events_partitions'));
        IF to_regclass(part) IS NULL THEN
          EXECUTE format('CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%L) TO (%L)',
                         part, first, first + interval '1 month');
        END IF;
        RETURN part;
      END $$`);

    await q.query(`
      CREATE TABLE usage_requests (
        recorded_at timestamptz NOT NULL,
        key uuid PRIMARY KEY,
        -- The first 16 bytes of the body's SHA-256 (canonical JSON): a replay must match it.
        fingerprint uuid NOT NULL,
        account_id uuid NOT NULL,
        outcome varchar(16) NOT NULL,
        charge numeric(38,10) NOT NULL
      )`);

    // Months that hold events, and this month and the next three.
    await q.query(`
      SELECT usage_events_add_month(m::date)
      FROM (SELECT DISTINCT date_trunc('month', recorded_at AT TIME ZONE 'UTC') AS m FROM usage_events_flat
            UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + g * interval '1 month'
                  FROM generate_series(0, 3) g) months`);

    const tokenItems = [
      'input_text_tokens',
      'input_image_tokens',
      'cached_input_tokens',
      'output_text_tokens',
      'output_image_tokens',
      'partial_image_output_tokens',
    ];
    const quantity = (item: string): string =>
      `COALESCE((SELECT (l ->> 'quantity')::bigint FROM jsonb_array_elements(f.breakdown) l WHERE l ->> 'item' = '${item}'), 0)`;
    await q.query(`
      INSERT INTO usage_events (id, request_id, account_id, token_id, model, outcome, reason, charge, group_name, ratio,
        price_version_id, price_version, occurred_at, recorded_at, reviewed_at, input_tokens, output_tokens, images, lines)
      SELECT f.id, f.request_id, f.account_id, f.token_id, f.model, f.outcome, f.reason, f.charge, f.group_name, f.ratio,
             f.price_version_id, f.price_version, f.occurred_at, f.recorded_at, f.reviewed_at, f.input_tokens,
             f.output_tokens, f.images, NULLIF(q.lines, ARRAY[f.input_tokens, 0, 0, 0, f.output_tokens, 0]::bigint[])
      FROM usage_events_flat f
      JOIN price_versions p ON p.id = f.price_version_id
      LEFT JOIN LATERAL (SELECT ARRAY[${tokenItems.map(quantity).join(', ')}]::bigint[] AS lines) q
        ON p.mode = 'tokens' AND f.outcome <> 'skipped'`);
    await q.query(`
      INSERT INTO usage_requests (key, fingerprint, account_id, recorded_at, outcome, charge)
      SELECT usage_request_key(request_id), substring(request_hash FROM 1 FOR 32)::uuid, account_id,
             recorded_at, outcome, charge
      FROM usage_events_flat`);
    await q.query(`DROP TABLE usage_events_flat`);

    await q.query(`DROP INDEX ledger_entries_type_reference`);
    await q.query(
      `CREATE UNIQUE INDEX ledger_entries_type_reference ON ledger_entries (type, reference) WHERE type <> 'usage'`,
    );
    await q.query(`DROP INDEX ledger_entries_account_id`);
    // A usage entry's description is derived on read ("<model> request <reference>"): it
    // stores the model, not the sentence, unless it says more (an approval after review).
    await q.query(`
      ALTER TABLE ledger_entries
        ALTER COLUMN description DROP NOT NULL,
        ADD COLUMN model varchar(128),
        ADD CONSTRAINT ledger_entries_described
          CHECK (description IS NOT NULL OR (type = 'usage' AND model IS NOT NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    // The ledger is append-only; spelling out derived descriptions is the one edit a revert makes.
    await q.query(`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`);
    await q.query(
      `UPDATE ledger_entries SET description = model || ' request ' || reference WHERE description IS NULL`,
    );
    await q.query(`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only`);
    await q.query(`
      ALTER TABLE ledger_entries
        DROP CONSTRAINT ledger_entries_described,
        DROP COLUMN model,
        ALTER COLUMN description SET NOT NULL`);
    await q.query(`CREATE INDEX ledger_entries_account_id ON ledger_entries (account_id, id DESC)`);
    await q.query(`DROP INDEX ledger_entries_type_reference`);
    await q.query(
      `CREATE UNIQUE INDEX ledger_entries_type_reference ON ledger_entries (type, reference)`,
    );

    await q.query(`ALTER TABLE usage_events RENAME TO usage_events_parted`);
    await q.query(`
      CREATE TABLE usage_events (
        id bigint PRIMARY KEY DEFAULT nextval('usage_events_id_seq'),
        request_id varchar(200) NOT NULL,
        request_hash char(64) NOT NULL,
        account_id uuid NOT NULL,
        token_id uuid NOT NULL,
        model varchar(128) NOT NULL,
        outcome varchar(16) NOT NULL,
        reason varchar(32),
        charge numeric(38,10) NOT NULL CHECK (charge >= 0),
        group_name varchar(64) NOT NULL,
        ratio numeric(20,10) NOT NULL,
        price_version_id bigint NOT NULL,
        price_version integer NOT NULL,
        breakdown jsonb NOT NULL,
        event jsonb NOT NULL,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        reviewed_at timestamptz,
        input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
        output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
        images integer NOT NULL DEFAULT 0 CHECK (images >= 0),
        CONSTRAINT usage_events_request_id_key UNIQUE (request_id),
        CONSTRAINT usage_events_outcome_check CHECK (outcome IN ('charged', 'skipped', 'review', 'voided')),
        CONSTRAINT usage_events_reason_check
          CHECK (reason IN ('moderated', 'upstream_error', 'timeout', 'no_output', 'above_review_limit')),
        CONSTRAINT usage_events_outcome_reason CHECK (
          (outcome = 'charged' AND reason IS NULL)
          OR (outcome = 'skipped' AND reason IN ('moderated', 'upstream_error', 'timeout', 'no_output') AND charge = 0)
          OR (outcome IN ('review', 'voided') AND reason = 'above_review_limit')
        )
      )`);
    // The flat table had the raw event and the breakdown; neither was kept, so a revert keeps
    // every row and its counts with an empty event and breakdown (the charge is unchanged).
    await q.query(`
      INSERT INTO usage_events (id, request_id, request_hash, account_id, token_id, model, outcome, reason, charge,
        group_name, ratio, price_version_id, price_version, breakdown, event, occurred_at, recorded_at, reviewed_at,
        input_tokens, output_tokens, images)
      SELECT e.id, e.request_id, rpad(replace(r.fingerprint::text, '-', ''), 64, '0'), e.account_id, e.token_id, e.model,
             e.outcome, e.reason, e.charge, e.group_name, e.ratio, e.price_version_id, e.price_version, '[]', '{}',
             e.occurred_at, e.recorded_at, e.reviewed_at, e.input_tokens, e.output_tokens, e.images
      FROM usage_events_parted e JOIN usage_requests r ON r.key = usage_request_key(e.request_id)`);
    await q.query(`ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id`);
    await q.query(`DROP TABLE usage_events_parted`);
    await q.query(`DROP TABLE usage_requests`);
    await q.query(`DROP FUNCTION usage_events_add_month(date)`);
    await q.query(`DROP FUNCTION usage_request_key(text)`);
    await q.query(
      `CREATE INDEX usage_events_account_recorded ON usage_events (account_id, recorded_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX usage_events_review ON usage_events (recorded_at DESC, id DESC) WHERE outcome = 'review'`,
    );
  }
}
