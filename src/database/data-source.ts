import { DataSource, DataSourceOptions } from 'typeorm';
import { Foundation1763700000000 } from '../../migrations/1763700000000-foundation.js';
import { UsageEvents1763800000000 } from '../../migrations/1763800000000-usage-events.js';
import { Payments1763900000000 } from '../../migrations/1763900000000-payments.js';
import { Statements1764000000000 } from '../../migrations/1764000000000-statements.js';
import { UsageEventsLean1764300000000 } from '../../migrations/1764300000000-usage-events-lean.js';
import { SpendControl1764500000000 } from '../../migrations/1764500000000-spend-control.js';
import { UsageCounts1764510000000 } from '../../migrations/1764510000000-usage-counts.js';
import { AuditLog1764520000000 } from '../../migrations/1764520000000-audit-log.js';
import { PaymentsGuard1764600000000 } from '../../migrations/1764600000000-payments-guard.js';
import { Console1764700000000 } from '../../migrations/1764700000000-console.js';
import { UsagePartitions1764800000000 } from '../../migrations/1764800000000-usage-partitions.js';
import { HoldFunction1764810000000 } from '../../migrations/1764810000000-hold-function.js';
import { HotUpdates1764820000000 } from '../../migrations/1764820000000-hot-updates.js';
import { AuthorizeFunction1764830000000 } from '../../migrations/1764830000000-authorize-function.js';
import { LeanRegisterLedger1764840000000 } from '../../migrations/1764840000000-lean-register-ledger.js';
import { UsageBookFunction1764850000000 } from '../../migrations/1764850000000-usage-book-function.js';
import { AuthorizeFastHold1764860000000 } from '../../migrations/1764860000000-authorize-fast-hold.js';
import { UsageLockJoin1764870000000 } from '../../migrations/1764870000000-usage-lock-join.js';
import { PlansWithoutStatistics1764880000000 } from '../../migrations/1764880000000-plans-without-statistics.js';

/** Migrations in the order they run; listed explicitly so the app, the CLI and tests agree. */
export const MIGRATIONS = [
  Foundation1763700000000,
  UsageEvents1763800000000,
  Payments1763900000000,
  Statements1764000000000,
  UsageEventsLean1764300000000,
  SpendControl1764500000000,
  UsageCounts1764510000000,
  AuditLog1764520000000,
  PaymentsGuard1764600000000,
  Console1764700000000,
  UsagePartitions1764800000000,
  HoldFunction1764810000000,
  HotUpdates1764820000000,
  AuthorizeFunction1764830000000,
  LeanRegisterLedger1764840000000,
  UsageBookFunction1764850000000,
  AuthorizeFastHold1764860000000,
  UsageLockJoin1764870000000,
  PlansWithoutStatistics1764880000000,
];

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
  /**
   * The pool's lock_timeout: how long a statement waits for a row lock before giving up, so
   * one stuck account cannot stall the others. Ingestion writes an event alone with a longer
   * wait (LOCK_TIMEOUT_MS) after its group gave up.
   */
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
}

export function dataSourceOptions(db: DatabaseSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: db.url,
    entities: [],
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    logging: false,
    applicationName: 'image-billing',
    extra: {
      max: db.poolSize ?? 20,
      ...(db.lockTimeoutMs ? { lock_timeout: db.lockTimeoutMs } : {}),
      ...(db.statementTimeoutMs ? { statement_timeout: db.statementTimeoutMs } : {}),
    },
  };
}

/** The one DataSource definition shared by the app and `npm run migration:run`. */
export function createDataSource(url: string, poolSize?: number): DataSource {
  return new DataSource(dataSourceOptions({ url, poolSize }));
}

/** Advisory lock key so that instances starting together run migrations one at a time. */
const MIGRATION_LOCK = 7_263_700_001;

export async function runMigrations(ds: DataSource): Promise<string[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const ran = await ds.runMigrations({ transaction: 'all' });
    return ran.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}
