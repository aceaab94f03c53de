/**
 * Storage per usage event, on disk as the ingestion scenarios left it (tables, TOAST and
 * indexes; no VACUUM FULL), beside pgbench's events and ledger tables for the same events.
 *
 * The service's bytes per event are what every usage event writes a row of: usage_events
 * (summed over its partitions or inheritance children when it has them: usage_events_YYYY_MM),
 * usage_requests (the request register, when the schema has one: it holds what was the events'
 * unique index) and the share of ledger_entries that usage rows are of all its rows, over the
 * usage_events rows: the issue's own basis (its 1,524 B were usage_events and ledger_entries).
 * usage_daily, the roll-up, has a row per account, UTC day and model, not per event: it is
 * reported beside the sum (its rows, its bytes, and the sum with it), since over a short run
 * with many accounts, HOT row versions left by concurrent updates make it look large. Measured
 * before the statement bench, whose million events are written straight in SQL.
 */
import pg from 'pg';
import { log, TARGETS } from '../lib/config.js';
import { type BenchDatabases, withClient } from '../lib/db.js';
import { fmtInt } from '../lib/report.js';
import { round } from '../lib/stats.js';

/** Bytes per usage event by table (ledger_entries: the usage rows' share). */
export interface StorageParts {
  usageEvents: number;
  usageRequests: number | null;
  usageDaily: number;
  ledgerEntries: number;
}

export interface StorageResult {
  /** usage_events rows, the divisor. */
  usageEvents: number;
  /** usage_daily rows (account, day, model). */
  usageDailyRows: number;
  /** bytesPerEvent with usage_daily's bytes added. */
  bytesPerEventWithRollups: number | null;
  /** Partitions (or inheritance children) of usage_events; 0 when it is one plain table. */
  usageEventsPartitions: number;
  bytesPerEvent: number | null;
  perEvent: StorageParts | null;
  /** Whole sizes in bytes (usage_requests null when the schema has no such table). */
  bytes: {
    usageEvents: number;
    usageRequests: number | null;
    usageDaily: number;
    ledgerEntries: number;
  };
  ledgerRows: { usage: number; all: number };
  pgbench: {
    events: number;
    bytesPerEvent: number | null;
    eventsBytes: number;
    ledgerBytes: number;
  };
  target: string;
  met: boolean;
}

/**
 * A table's size with its TOAST and indexes, summed over its whole inheritance tree
 * (declarative partitions are in pg_inherits too; a partitioned parent itself has no storage);
 * null when there is no such table.
 */
async function treeBytes(
  c: pg.Client,
  table: string,
): Promise<{ bytes: number; children: number } | null> {
  const r = await c.query<{ bytes: string; children: string }>(
    `WITH RECURSIVE tree(oid) AS (
       SELECT to_regclass($1)::oid
       UNION ALL
       SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
     )
     SELECT COALESCE(sum(pg_total_relation_size(oid)), 0)::text AS bytes,
            (count(*) - 1)::text AS children
     FROM tree WHERE oid IS NOT NULL`,
    [table],
  );
  const row = r.rows[0];
  if (Number(row.children) < 0) return null; // no such table: the tree is empty
  return { bytes: Number(row.bytes), children: Number(row.children) };
}

const perEvent = (bytes: number, events: number): number => (events > 0 ? bytes / events : NaN);

/** Measures both databases; a failure (a schema the bench does not know) is logged, not thrown. */
export async function storagePerEvent(dbs: BenchDatabases): Promise<StorageResult | null> {
  log("storage: bytes per usage event in the service database and in pgbench's");
  try {
    const result = await measure(dbs);
    const p = result.perEvent;
    log(
      `  → ${fmtInt(result.bytesPerEvent)} B per event over ${fmtInt(result.usageEvents)} events` +
        (p
          ? ` (usage_events ${fmtInt(p.usageEvents)}${result.usageEventsPartitions ? ` in ${result.usageEventsPartitions} partitions` : ''}, ` +
            `${p.usageRequests === null ? '' : `usage_requests ${fmtInt(p.usageRequests)}, `}` +
            `ledger_entries ${fmtInt(p.ledgerEntries)}); pgbench ${fmtInt(result.pgbench.bytesPerEvent)} B; ` +
            `with usage_daily (${fmtInt(result.usageDailyRows)} rows, ${fmtInt(p.usageDaily)} B an event) ` +
            `${fmtInt(result.bytesPerEventWithRollups)} B`
          : ''),
    );
    return result;
  } catch (e) {
    log(`  storage not measured: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
}

async function measure(dbs: BenchDatabases): Promise<StorageResult> {
  const service = await withClient(dbs.serviceUrl, async (c) => {
    const events = await treeBytes(c, 'usage_events');
    const daily = await treeBytes(c, 'usage_daily');
    const ledger = await treeBytes(c, 'ledger_entries');
    if (!events || !daily || !ledger)
      throw new Error('usage_events, usage_daily or ledger_entries is missing');
    const requests = await treeBytes(c, 'usage_requests');
    const rows = (
      await c.query<{ events: string; daily: string; usage: string; all: string }>(
        `SELECT (SELECT count(*) FROM usage_events)::text AS events,
                (SELECT count(*) FROM usage_daily)::text AS daily,
                count(*) FILTER (WHERE type = 'usage')::text AS usage,
                count(*)::text AS "all"
         FROM ledger_entries`,
      )
    ).rows[0];
    return { events, daily, ledger, requests, rows };
  });
  const pgb = await withClient(dbs.pgbenchUrl, async (c) => {
    const events = await treeBytes(c, 'events');
    const ledger = await treeBytes(c, 'ledger');
    const n = (await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM events`)).rows[0].n;
    return { events: Number(n), eventsBytes: events?.bytes ?? 0, ledgerBytes: ledger?.bytes ?? 0 };
  });

  const events = Number(service.rows.events);
  const ledgerUsage = Number(service.rows.usage);
  const ledgerAll = Number(service.rows.all);
  // The ledger's bytes attributed to usage: its usage rows' share of all its rows.
  const ledgerUsageBytes = ledgerAll > 0 ? (service.ledger.bytes * ledgerUsage) / ledgerAll : 0;
  const parts: StorageParts | null =
    events > 0
      ? {
          usageEvents: round(perEvent(service.events.bytes, events), 1),
          usageRequests:
            service.requests === null ? null : round(perEvent(service.requests.bytes, events), 1),
          usageDaily: round(perEvent(service.daily.bytes, events), 1),
          ledgerEntries: round(perEvent(ledgerUsageBytes, events), 1),
        }
      : null;
  const perEventBytes = service.events.bytes + (service.requests?.bytes ?? 0) + ledgerUsageBytes;
  const bytesPerEvent = events > 0 ? round(perEventBytes / events, 1) : null;
  return {
    usageEvents: events,
    usageDailyRows: Number(service.rows.daily),
    bytesPerEventWithRollups:
      events > 0 ? round((perEventBytes + service.daily.bytes) / events, 1) : null,
    usageEventsPartitions: service.events.children,
    bytesPerEvent,
    perEvent: parts,
    bytes: {
      usageEvents: service.events.bytes,
      usageRequests: service.requests?.bytes ?? null,
      usageDaily: service.daily.bytes,
      ledgerEntries: service.ledger.bytes,
    },
    ledgerRows: { usage: ledgerUsage, all: ledgerAll },
    pgbench: {
      events: pgb.events,
      bytesPerEvent:
        pgb.events > 0 ? round((pgb.eventsBytes + pgb.ledgerBytes) / pgb.events, 1) : null,
      eventsBytes: pgb.eventsBytes,
      ledgerBytes: pgb.ledgerBytes,
    },
    target: `≤ ${TARGETS.storageBytesPerEvent} B per event`,
    met: bytesPerEvent !== null && bytesPerEvent <= TARGETS.storageBytesPerEvent,
  };
}
