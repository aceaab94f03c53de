import { MigrationInterface, QueryRunner } from 'typeorm';

/** Groups, accounts, the ledger, adjustments, API tokens and the price catalog. */
export class Foundation1763700000000 implements MigrationInterface {
  name = 'Foundation1763700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE seed_runs (
        name text PRIMARY KEY,
        ran_at timestamptz NOT NULL DEFAULT now()
      )`);

    await q.query(`
      CREATE TABLE groups (
        name varchar(64) PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
        ratio numeric(20,10) NOT NULL CHECK (ratio > 0 AND ratio <= 100),
        description text NOT NULL DEFAULT '',
        selectable boolean NOT NULL DEFAULT true,
        is_default boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // At most one default group, enforced by the database.
    await q.query(`CREATE UNIQUE INDEX groups_single_default ON groups (is_default) WHERE is_default`);

    await q.query(`
      CREATE TABLE accounts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(200) NOT NULL,
        email varchar(320),
        status varchar(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        balance numeric(38,10) NOT NULL DEFAULT 0,
        console_key_hash char(64) NOT NULL,
        console_key_prefix varchar(16) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT accounts_console_key_hash_key UNIQUE (console_key_hash)
      )`);
    await q.query(`CREATE INDEX accounts_created_at_id ON accounts (created_at DESC, id DESC)`);

    await q.query(`
      CREATE TABLE ledger_entries (
        id bigserial PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        type varchar(16) NOT NULL CHECK (type IN ('usage', 'top_up', 'refund', 'adjustment')),
        amount numeric(38,10) NOT NULL,
        balance_after numeric(38,10) NOT NULL,
        description text NOT NULL,
        reference text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ledger_entries_account_id ON ledger_entries (account_id, id DESC)`);
    // Each cause (usage request, top-up, refund, adjustment) is booked at most once.
    await q.query(`CREATE UNIQUE INDEX ledger_entries_type_reference ON ledger_entries (type, reference)`);
    // Append-only: the database refuses to change or remove a booked entry.
    await q.query(`
      CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'ledger_entries is append-only';
      END $$`);
    await q.query(`
      CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()`);

    await q.query(`
      CREATE TABLE adjustments (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES accounts (id),
        idempotency_key varchar(255) NOT NULL,
        request_hash char(64) NOT NULL,
        amount numeric(38,10) NOT NULL CHECK (amount <> 0),
        reason text NOT NULL,
        ledger_entry_id bigint REFERENCES ledger_entries (id),
        balance_after numeric(38,10),
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT adjustments_account_idempotency_key UNIQUE (account_id, idempotency_key)
      )`);

    await q.query(`
      CREATE TABLE api_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES accounts (id),
        name varchar(200) NOT NULL,
        group_name varchar(64) NOT NULL REFERENCES groups (name) ON UPDATE CASCADE,
        key_hash char(64) NOT NULL,
        key_prefix varchar(16) NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
        expires_at timestamptz,
        spend_limit numeric(38,10) CHECK (spend_limit IS NULL OR spend_limit >= 0),
        spent numeric(38,10) NOT NULL DEFAULT 0,
        allowed_models text[],
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz,
        CONSTRAINT api_tokens_key_hash_key UNIQUE (key_hash)
      )`);
    await q.query(`CREATE INDEX api_tokens_account_created ON api_tokens (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX api_tokens_group_name ON api_tokens (group_name)`);

    await q.query(`
      CREATE TABLE models (
        name varchar(128) PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE price_versions (
        id bigserial PRIMARY KEY,
        model varchar(128) NOT NULL REFERENCES models (name),
        version integer NOT NULL CHECK (version > 0),
        mode varchar(16) NOT NULL CHECK (mode IN ('tokens', 'per_request', 'per_image')),
        input_text numeric(20,10) CHECK (input_text >= 0),
        input_image numeric(20,10) CHECK (input_image >= 0),
        cached_input numeric(20,10) CHECK (cached_input >= 0),
        output_text numeric(20,10) CHECK (output_text >= 0),
        output_image numeric(20,10) CHECK (output_image >= 0),
        partial_image_output_tokens integer CHECK (partial_image_output_tokens >= 0),
        per_request numeric(20,10) CHECK (per_request > 0),
        per_image numeric(20,10) CHECK (per_image > 0),
        reference_prices jsonb,
        effective_from timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT price_versions_model_version UNIQUE (model, version),
        CONSTRAINT price_versions_mode_fields CHECK (
          (mode = 'tokens' AND input_text IS NOT NULL AND input_image IS NOT NULL AND cached_input IS NOT NULL
             AND output_text IS NOT NULL AND output_image IS NOT NULL AND partial_image_output_tokens IS NOT NULL
             AND per_request IS NULL AND per_image IS NULL)
          OR (mode = 'per_request' AND per_request IS NOT NULL AND per_image IS NULL AND input_text IS NULL)
          OR (mode = 'per_image' AND per_image IS NOT NULL AND per_request IS NULL AND input_text IS NULL)
        )
      )`);
    await q.query(`CREATE INDEX price_versions_model_effective ON price_versions (model, effective_from DESC, version DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE price_versions`);
    await q.query(`DROP TABLE models`);
    await q.query(`DROP TABLE api_tokens`);
    await q.query(`DROP TABLE adjustments`);
    await q.query(`DROP TRIGGER ledger_entries_append_only ON ledger_entries`);
    await q.query(`DROP FUNCTION ledger_entries_append_only()`);
    await q.query(`DROP TABLE ledger_entries`);
    await q.query(`DROP TABLE accounts`);
    await q.query(`DROP TABLE groups`);
    await q.query(`DROP TABLE seed_runs`);
  }
}
