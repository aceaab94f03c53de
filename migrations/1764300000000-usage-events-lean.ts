import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ingestion hot path writes one usage_events row per event. Its foreign keys cost a
 * lookup and a row lock per key per row; the ingestion statement already joins the token
 * and its account under a lock and takes the price version from the catalog, and no API
 * deletes accounts, tokens or price versions, so those checks only cost. The token_id index
 * served no query (usage views filter by account first).
 */
export class UsageEventsLean1764300000000 implements MigrationInterface {
  name = 'UsageEventsLean1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_account_id_fkey`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_token_id_fkey`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_price_version_id_fkey`);
    await q.query(`DROP INDEX usage_events_token`);
    // Statements sum only top-ups, refunds and adjustments through this index; usage entries
    // (almost all rows) no longer pay for maintaining it.
    await q.query(`DROP INDEX ledger_entries_account_type_created`);
    await q.query(
      `CREATE INDEX ledger_entries_account_type_created ON ledger_entries (account_id, type, created_at)
       WHERE type IN ('top_up', 'refund', 'adjustment')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_account_type_created`);
    await q.query(`CREATE INDEX ledger_entries_account_type_created ON ledger_entries (account_id, type, created_at)`);
    await q.query(`CREATE INDEX usage_events_token ON usage_events (token_id)`);
    await q.query(
      `ALTER TABLE usage_events ADD CONSTRAINT usage_events_price_version_id_fkey FOREIGN KEY (price_version_id) REFERENCES price_versions (id)`,
    );
    await q.query(
      `ALTER TABLE usage_events ADD CONSTRAINT usage_events_token_id_fkey FOREIGN KEY (token_id) REFERENCES api_tokens (id)`,
    );
    await q.query(
      `ALTER TABLE usage_events ADD CONSTRAINT usage_events_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id)`,
    );
  }
}
