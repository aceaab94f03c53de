import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Daily usage roll-ups per account and model, kept in the ingestion transaction, so a month's
 * statement reads ~31 × models rows instead of every event; and an index for the ledger by time.
 */
export class Statements1764000000000 implements MigrationInterface {
  name = 'Statements1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE usage_daily (
        account_id uuid NOT NULL REFERENCES accounts (id),
        day date NOT NULL,
        model varchar(128) NOT NULL,
        requests bigint NOT NULL DEFAULT 0,
        charged bigint NOT NULL DEFAULT 0,
        skipped bigint NOT NULL DEFAULT 0,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        images bigint NOT NULL DEFAULT 0,
        charge numeric(38,10) NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, day, model)
      )`);
    await q.query(`CREATE INDEX ledger_entries_account_created ON ledger_entries (account_id, created_at, id)`);
    await q.query(`CREATE INDEX ledger_entries_account_type_created ON ledger_entries (account_id, type, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_account_type_created`);
    await q.query(`DROP INDEX ledger_entries_account_created`);
    await q.query(`DROP TABLE usage_daily`);
  }
}
