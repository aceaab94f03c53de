import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The rows every usage event updates (the account's balance and held, the token's spend and
 * held, the day's roll-up) keep half of each page free, so an update can stay on its page as
 * a HOT update: no new index entries, and the old row version is pruned in place. Packed full,
 * every update moved the row to another page and indexed it again. Pages written before this
 * keep their layout until the table is rewritten (VACUUM FULL, or pg_repack on a live system).
 */
export class HotUpdates1764820000000 implements MigrationInterface {
  name = 'HotUpdates1764820000000';

  async up(q: QueryRunner): Promise<void> {
    for (const table of ['accounts', 'api_tokens', 'usage_daily'])
      await q.query(`ALTER TABLE ${table} SET (fillfactor = 50)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['accounts', 'api_tokens', 'usage_daily'])
      await q.query(`ALTER TABLE ${table} RESET (fillfactor)`);
  }
}
