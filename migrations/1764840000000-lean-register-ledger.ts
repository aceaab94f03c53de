import { MigrationInterface, QueryRunner } from 'typeorm';

const TYPES = `'usage', 'top_up', 'refund', 'dispute', 'redemption', 'adjustment'`;
const MOVEMENT_TYPES = `'top_up', 'refund', 'dispute', 'redemption', 'adjustment'`;

/**
 * Fewer bytes in the two permanent rows every usage event writes (measured on the bench's
 * rows: register 96 → 80 B, ledger usage entry 120 → 112 B, and one ledger index fewer,
 * ~23 B an entry):
 *
 * - The request register (`usage_requests`) keeps the first 8 bytes of the body's SHA-256
 *   (a bigint) instead of 16: the fingerprint only tells a replay with the same body from one
 *   with another (a different body passes for the same one with odds of 2^-64); the key stays
 *   16 bytes, since it must be unique across every request id ever recorded. The outcome is a
 *   one-byte "char" (c, s, r, v for charged, skipped, review, voided): a literal such as
 *   'charged' compared with it is read as its first byte, and usage_outcome_name() spells it
 *   out for readers.
 * - The ledger is rebuilt with its columns in an order that leaves no alignment padding,
 *   and with no NULL in a usage entry (a row without NULLs carries no null bitmap: here that
 *   is 8 bytes of header): a usage entry's description is '' and is derived as
 *   "<model> request <reference>" on read. Its primary key is (account_id, created_at, id),
 *   the index every ledger read already goes through (pages, statements' opening balances,
 *   reconcile), instead of a second index on id alone. Ids still come from the one sequence
 *   and stay unique; an account's entries are in the same order by (created_at, id) as by id.
 *   adjustments.ledger_entry_id loses its foreign key (one needs a unique index on id alone):
 *   the adjustment and its entry are written in one transaction, the entry is also found by
 *   its (type, reference) unique key, and the ledger is append-only (nothing can remove it).
 *
 * Both tables are rewritten under an exclusive lock: on a large database, run it in a
 * maintenance window (on the development machine, copying 2 million ledger rows in key order
 * and building the primary key took ~7 s, before the foreign-key check and the other indexes).
 */
export class LeanRegisterLedger1764840000000 implements MigrationInterface {
  name = 'LeanRegisterLedger1764840000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE usage_requests
        ALTER COLUMN fingerprint TYPE bigint
          USING ('x' || left(replace(fingerprint::text, '-', ''), 16))::bit(64)::bigint,
        ALTER COLUMN outcome TYPE "char" USING outcome::"char"`);
    await q.query(
      `ALTER TABLE usage_requests ADD CONSTRAINT usage_requests_outcome CHECK (outcome IN ('c', 's', 'r', 'v'))`,
    );
    await q.query(`
      CREATE FUNCTION usage_outcome_name(code "char") RETURNS varchar
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $$ SELECT CASE code WHEN 'c' THEN 'charged' WHEN 's' THEN 'skipped' WHEN 'r' THEN 'review'
                             WHEN 'v' THEN 'voided' END::varchar $$`);

    await q.query(`ALTER TABLE adjustments DROP CONSTRAINT adjustments_ledger_entry_id_fkey`);
    // Built beside the old table, which keeps its constraint and index names until it goes.
    await q.query(`ALTER TABLE ledger_entries RENAME TO ledger_entries_old`);
    await q.query(`
      CREATE TABLE ledger_entries (
        -- Fixed-width columns first, widest first: no alignment padding between them.
        id bigint NOT NULL DEFAULT nextval('ledger_entries_id_seq'),
        created_at timestamptz NOT NULL DEFAULT now(),
        account_id uuid NOT NULL,
        amount numeric(38,10) NOT NULL,
        balance_after numeric(38,10) NOT NULL,
        type varchar(16) NOT NULL,
        reference text NOT NULL,
        -- '' for a usage entry that gives its model: read as "<model> request <reference>".
        description text NOT NULL,
        model varchar(128)
      )`);
    await q.query(`
      INSERT INTO ledger_entries (id, created_at, account_id, amount, balance_after, type, reference, description, model)
      SELECT id, created_at, account_id, amount, balance_after, type, reference, COALESCE(description, ''), model
      FROM ledger_entries_old ORDER BY account_id, created_at, id`);
    await q.query(`ALTER SEQUENCE ledger_entries_id_seq OWNED BY ledger_entries.id`);
    await q.query(`DROP TABLE ledger_entries_old`);
    await q.query(`
      ALTER TABLE ledger_entries
        ADD CONSTRAINT ledger_entries_pkey PRIMARY KEY (account_id, created_at, id),
        ADD CONSTRAINT ledger_entries_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id),
        ADD CONSTRAINT ledger_entries_type_check CHECK (type IN (${TYPES})),
        ADD CONSTRAINT ledger_entries_described CHECK (description <> '' OR (type = 'usage' AND model IS NOT NULL))`);
    await this.secondaryIndexes(q);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_entries RENAME TO ledger_entries_old`);
    await q.query(`
      CREATE TABLE ledger_entries (
        id bigint NOT NULL DEFAULT nextval('ledger_entries_id_seq'),
        account_id uuid NOT NULL,
        type varchar(16) NOT NULL,
        amount numeric(38,10) NOT NULL,
        balance_after numeric(38,10) NOT NULL,
        description text,
        reference text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        model varchar(128)
      )`);
    await q.query(`
      INSERT INTO ledger_entries (id, account_id, type, amount, balance_after, description, reference, created_at, model)
      SELECT id, account_id, type, amount, balance_after, NULLIF(description, ''), reference, created_at, model
      FROM ledger_entries_old ORDER BY id`);
    await q.query(`ALTER SEQUENCE ledger_entries_id_seq OWNED BY ledger_entries.id`);
    await q.query(`DROP TABLE ledger_entries_old`);
    await q.query(`
      ALTER TABLE ledger_entries
        ADD CONSTRAINT ledger_entries_pkey PRIMARY KEY (id),
        ADD CONSTRAINT ledger_entries_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id),
        ADD CONSTRAINT ledger_entries_type_check CHECK (type IN (${TYPES})),
        ADD CONSTRAINT ledger_entries_described CHECK (description IS NOT NULL OR (type = 'usage' AND model IS NOT NULL))`);
    await q.query(
      `CREATE INDEX ledger_entries_account_created ON ledger_entries (account_id, created_at, id)`,
    );
    await this.secondaryIndexes(q);
    await q.query(`
      ALTER TABLE adjustments ADD CONSTRAINT adjustments_ledger_entry_id_fkey
        FOREIGN KEY (ledger_entry_id) REFERENCES ledger_entries (id)`);

    await q.query(`ALTER TABLE usage_requests DROP CONSTRAINT usage_requests_outcome`);
    // The fingerprint's other 8 bytes are gone: they come back as zeros. A replay, with its
    // original body, of an event recorded while this migration was in force is then answered
    // 409 (another body) instead of as a duplicate: refused, never charged twice.
    await q.query(`
      ALTER TABLE usage_requests
        ALTER COLUMN fingerprint TYPE uuid
          USING (lpad(to_hex(fingerprint), 16, '0') || '0000000000000000')::uuid,
        ALTER COLUMN outcome TYPE varchar(16) USING usage_outcome_name(outcome)`);
    await q.query(`DROP FUNCTION usage_outcome_name("char")`);
  }

  /** The partial indexes and the trigger every layout of the table has. */
  private async secondaryIndexes(q: QueryRunner): Promise<void> {
    // Statements sum every non-usage type through this index.
    await q.query(
      `CREATE INDEX ledger_entries_account_type_created ON ledger_entries (account_id, type, created_at)
       WHERE type IN (${MOVEMENT_TYPES})`,
    );
    // A usage entry is unique through the request register, in the statement that books it.
    await q.query(
      `CREATE UNIQUE INDEX ledger_entries_type_reference ON ledger_entries (type, reference) WHERE type <> 'usage'`,
    );
    await q.query(`
      CREATE TRIGGER ledger_entries_append_only BEFORE DELETE OR UPDATE ON ledger_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()`);
  }
}
