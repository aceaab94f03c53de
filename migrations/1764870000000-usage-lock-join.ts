import { MigrationInterface, QueryRunner } from 'typeorm';
import { replaceInFunction, USAGE_BOOK } from './function-source.js';

/** usage_book's first statement, as migration 1764850000000 wrote it. */
const LOCK_BY_ARRAY = `PERFORM 1 FROM accounts a WHERE a.id = ANY (p_account_id) ORDER BY a.id FOR NO KEY UPDATE;`;

/** The same locks in the same order, the accounts found by a join on the distinct ids. */
const LOCK_BY_JOIN = `PERFORM 1 FROM (SELECT DISTINCT x.id FROM unnest(p_account_id) AS x(id)) x
          JOIN accounts a ON a.id = x.id ORDER BY a.id FOR NO KEY UPDATE OF a;`;

/**
 * usage_book locks its accounts by a join on the distinct account ids instead of
 * `a.id = ANY (p_account_id)`. When a row it waited for was updated meanwhile (another
 * ingestion or authorize of that account committed), PostgreSQL rechecks the row against the
 * query (EvalPlanQual), and with `= ANY (array)` every recheck sorts the whole array again (one
 * id per event: 500 for a batch of 500). With four batches in flight over 1,000 accounts, most
 * accounts wait for another batch, and those sorts took 23% of PostgreSQL's CPU in the batch
 * bench (perf, `_bt_preprocess_array_keys` under `EvalPlanQualNext`). Joined, a recheck looks
 * at that one row. Same rows locked, in the same (id) order, same answers.
 *
 * Only that statement changes, so this migration edits the function's definition as
 * PostgreSQL keeps it (replaceInFunction) and fails if it does not find the statement.
 */
export class UsageLockJoin1764870000000 implements MigrationInterface {
  name = 'UsageLockJoin1764870000000';

  async up(q: QueryRunner): Promise<void> {
    await replaceInFunction(q, USAGE_BOOK, LOCK_BY_ARRAY, LOCK_BY_JOIN);
  }

  async down(q: QueryRunner): Promise<void> {
    await replaceInFunction(q, USAGE_BOOK, LOCK_BY_JOIN, LOCK_BY_ARRAY);
  }
}
