import { cpus, totalmem } from 'node:os';
import type { BookAloneResult } from '../scenarios/book-alone.js';
import type { StatementBenchResult } from '../scenarios/statement.js';
import type { HoldsOutcome } from '../scenarios/authorize.js';
import type { StorageResult } from '../scenarios/storage.js';
import type { BenchConfig, TARGETS } from './config.js';
import type { BenchDatabases } from './db.js';
import type { PgbenchResult } from './pgbench.js';
import { fmtCpu, fmtInt, fmtMs, fmtPct, type ScenarioReport } from './report.js';
import { table } from './table.js';
import type { BalancesCheck } from './verify.js';

/** Everything the printed summary and the failure list are made of. */
export interface BenchSummary {
  startedAt: Date;
  totalSeconds: number;
  setupSeconds: number;
  cfg: BenchConfig;
  targets: typeof TARGETS;
  dbs: Pick<BenchDatabases, 'serverVersion' | 'source'>;
  scenarios: ScenarioReport[];
  pgbenchRuns: PgbenchResult[];
  holds: HoldsOutcome | null;
  statement: StatementBenchResult | null;
  book: BookAloneResult | null;
  storage: StorageResult | null;
  rss: Record<string, number | null>;
  rssFinal: number | null;
}

/** The summary printed after the run: the scenario and pgbench tables, then the details. */
export function summaryLines(s: BenchSummary): string[] {
  const { cfg, dbs, scenarios, pgbenchRuns, statement, rss } = s;
  const rows: string[][] = [
    [
      'scenario',
      'service events/s',
      'pgbench events/s',
      'ratio',
      'p50 ms',
      'p99 ms',
      'errors',
      'target',
      'met?',
    ],
    ...scenarios.map((x) => [
      x.name,
      fmtInt(x.eventsPerSec),
      x.pgbench ? fmtInt(x.pgbench.eventsPerSec) : '—',
      x.ratio === null ? '—' : x.ratio.toFixed(2),
      fmtMs(x.latencyMs.p50),
      fmtMs(x.latencyMs.p99),
      `${x.errorEvents}/${fmtInt(x.events)}`,
      x.target,
      x.informational ? '—' : x.met ? 'yes' : 'NO',
    ]),
  ];
  const pgRows: string[][] = [
    ['pgbench script', 'clients', 'tps', 'events/s', 'lat avg ms', 'p50 ms', 'p99 ms', 'failed'],
    ...pgbenchRuns.map((p) => [
      pgbenchLabel(p) + (p.eventsPerTxn > 1 ? ` (${p.eventsPerTxn} events/txn)` : ''),
      String(p.clients),
      fmtInt(p.tps),
      fmtInt(p.eventsPerSec),
      fmtMs(p.latencyAvgMs),
      fmtMs(p.p50Ms),
      fmtMs(p.p99Ms),
      String(p.failed),
    ]),
  ];
  // Another job on the machine (tests, builds) takes CPU from the service and PostgreSQL alike.
  const disturbed = [
    ...scenarios.map((x) => ({ name: x.name, cpu: x.cpu })),
    ...pgbenchRuns.map((p) => ({ name: `pgbench ${pgbenchLabel(p)}`, cpu: p.cpu })),
  ].filter((x) => (x.cpu?.otherPct ?? 0) > 20);
  return [
    '',
    `Billing service bench — ${s.startedAt.toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, PostgreSQL ${dbs.serverVersion} (${dbs.source})`,
    `Service: ${cfg.accounts} accounts, ${cfg.concurrency} keep-alive connections for single events, batches of ${cfg.batchSize} × ${cfg.batchConcurrency} concurrent, ${cfg.seconds} s per scenario. pgbench: -c ${cfg.pgbenchClients} -j ${cfg.pgbenchThreads} -T ${cfg.seconds} -M prepared.`,
    '',
    'Targets, each beside pgbench doing the same SQL work:',
    table(targetRows(s)),
    '',
    table(rows),
    '',
    table(pgRows),
    '',
    ...(disturbed.length
      ? [
          `WARNING: other processes used > 20% of one core during ${disturbed.length} of ${scenarios.length + pgbenchRuns.length} runs, so those figures are disturbed: ` +
            disturbed.map((x) => `${x.name} (${fmtPct(x.cpu?.otherPct ?? null)})`).join(', '),
          '',
        ]
      : []),
    ...holdsLines(cfg, s.holds),
    statement
      ? `Statement of a month with ${fmtInt(statement.events)} usage events: p50 ${fmtMs(statement.p50Ms)} ms, max ${fmtMs(statement.maxMs)} ms over ${statement.runs} runs (target < 300 ms: ${statement.maxMs < 300 ? 'yes' : 'NO'})`
      : 'Statement bench skipped (BENCH_SKIP_STATEMENT=1)',
    '',
    ...bookLines(s.book),
    'CPU during each scenario (% of one core):',
    ...scenarios.map((x) => `  ${x.name}: ${fmtCpu(x.cpu)}`),
    ...pgbenchRuns.map((p) => `  pgbench ${pgbenchLabel(p)}: ${fmtCpu(p.cpu)}`),
    '',
    'Service write transactions (server-wide transaction ids used during each scenario):',
    ...scenarios.map(
      (x) =>
        `  ${x.name}: ${fmtInt(Number(x.extra?.writeTransactions))} transactions, ${String(x.extra?.eventsPerTransaction ?? '—')} events each`,
    ),
    '',
    `Service RSS: ${fmtMs(rss.start)} MiB at start, ${fmtMs(rss.afterSetup)} MiB after setup, ${fmtMs(rss.end)} MiB after the scenarios, ${fmtMs(s.rssFinal)} MiB at the end`,
    `Setup: ${s.setupSeconds.toFixed(1)} s. Total bench: ${s.totalSeconds.toFixed(0)} s.`,
  ];
}

/** A pgbench run's name: its script, and its rate for an open loop. */
const pgbenchLabel = (p: PgbenchResult): string =>
  p.rate ? `${p.script} at ${fmtInt(p.rate)}/s` : p.script;

/**
 * One row per target: the service's figure, pgbench's doing the same SQL work the same way
 * (closed loop, or open loop at the same rate for a latency target), the target, met or not.
 */
function targetRows(s: BenchSummary): string[][] {
  const rows: string[][] = [['target', 'service', 'pgbench', 'ratio', 'target', 'met?']];
  const byId = new Map(s.scenarios.map((x) => [x.id, x]));
  const metCell = (met: boolean | null): string => (met === null ? '—' : met ? 'yes' : 'NO');
  const throughput = (id: string, unit: string): void => {
    const x = byId.get(id);
    if (!x) return;
    rows.push([
      x.name,
      `${fmtInt(x.eventsPerSec)} ${unit}`,
      x.pgbench ? `${fmtInt(x.pgbench.eventsPerSec)} ${unit}` : '—',
      x.ratio === null ? '—' : x.ratio.toFixed(2),
      x.target,
      metCell(x.met),
    ]);
  };
  const p99 = (id: string): void => {
    const x = byId.get(id);
    if (!x) return;
    rows.push([
      x.name,
      `p99 ${fmtMs(x.latencyMs.p99)} ms`,
      x.pgbench ? `p99 ${fmtMs(x.pgbench.p99Ms)} ms` : '—',
      '—',
      x.target,
      metCell(x.met),
    ]);
  };
  throughput('single_spread', 'events/s');
  p99('open_loop');
  throughput('batch', 'events/s');
  throughput('single_hot', 'events/s');
  const st = s.storage;
  const bytes = (x: number | null | undefined): string =>
    x === null || x === undefined ? '—' : `${fmtInt(x)} B`;
  rows.push([
    'storage per usage event',
    st ? bytes(st.bytesPerEvent) : 'not measured',
    st ? bytes(st.pgbench.bytesPerEvent) : '—',
    '—',
    `≤ ${fmtInt(s.targets.storageBytesPerEvent)} B per event`,
    metCell(st ? st.met : null),
  ]);
  if (st?.perEvent) {
    const p = st.perEvent;
    const pgbEvents = st.pgbench.events;
    const pgbPart = (b: number): string => (pgbEvents > 0 ? bytes(b / pgbEvents) : '—');
    const parts = st.usageEventsPartitions;
    rows.push(
      [
        `  usage_events${parts ? ` (${parts} partitions)` : ''}`,
        bytes(p.usageEvents),
        `${pgbPart(st.pgbench.eventsBytes)} (events)`,
        '',
        '',
        '',
      ],
      ...(p.usageRequests === null
        ? []
        : [['  usage_requests', bytes(p.usageRequests), '—', '', '', '']]),
      [
        `  ledger_entries (usage: ${fmtInt(st.ledgerRows.usage)} of ${fmtInt(st.ledgerRows.all)} rows)`,
        bytes(p.ledgerEntries),
        `${pgbPart(st.pgbench.ledgerBytes)} (ledger)`,
        '',
        '',
        '',
      ],
      [
        `  not per event: usage_daily (${fmtInt(st.usageDailyRows)} rows)`,
        `+${bytes(p.usageDaily)}`,
        '—',
        '',
        '',
        '',
      ],
      [`  sum with usage_daily`, bytes(st.bytesPerEventWithRollups), '—', '', '', ''],
    );
  }
  throughput('authorize_hold', 'authorizes/s');
  p99('authorize_open_loop');
  return rows;
}

/** What makes the bench exit 1: errors over the limit, holds or balances off, pgbench failures. */
export function benchFailures(s: BenchSummary, balances: BalancesCheck): string[] {
  const { cfg, holds } = s;
  const totalErrors = s.scenarios.reduce((a, x) => a + x.errorEvents, 0);
  const failures: string[] = [];
  for (const x of s.scenarios) {
    if (x.events > 0 && x.errorEvents / x.events > cfg.maxErrorRate) {
      failures.push(
        `${x.name}: ${x.errorEvents} of ${x.events} events failed (> ${cfg.maxErrorRate * 100}%): ${x.errorSamples.join(' | ')}`,
      );
    }
  }
  if (holds && !holds.check.ok && totalErrors === 0)
    failures.push(
      `holds do not match the confirmed authorizes and events: ${holds.check.samples.join(' | ') || JSON.stringify(holds.check)}`,
    );
  if (balances.failed)
    failures.push(
      `balances do not match the confirmed events: ${JSON.stringify(balances.verify.samples)}`,
    );
  for (const p of s.pgbenchRuns)
    if (p.failed > 0) failures.push(`pgbench ${pgbenchLabel(p)}: ${p.failed} failed transactions`);
  if (s.book && !s.book.ok)
    failures.push(
      `batch SQL alone: usage_book booked ${s.book.bookedEvents} of the ${s.book.expectedEvents} events it was given`,
    );
  for (const r of s.book?.runs ?? [])
    if (r.pgbench.failed > 0)
      failures.push(`batch SQL alone, ${r.name}: ${r.pgbench.failed} failed calls`);
  return failures;
}

/** The spend-control section under the tables. */
function holdsLines(cfg: BenchConfig, h: HoldsOutcome | null): string[] {
  if (!h) return ['Spend-control scenarios skipped (BENCH_SKIP_HOLDS=1)', ''];
  const c = h.check;
  const lines = [
    `Spend control: authorize holds ${h.holdAmount} per request; authorize over ${cfg.holdAccounts} accounts with ${cfg.authorizeConcurrency} connections (pgbench authorize: -c ${cfg.authorizeConcurrency}); ` +
      `authorize + event over ${cfg.accounts} accounts with ${cfg.concurrency} connections (pgbench authorize+event: -c ${cfg.pgbenchClients}, both transactions per run).`,
  ];
  for (const x of h.scenarios) {
    const steps = x.extra?.stepLatencyMs;
    if (steps)
      lines.push(
        `  ${x.name}: ${Object.entries(steps)
          .map(([k, l]) => `${k} p50 ${fmtMs(l.p50)} / p99 ${fmtMs(l.p99)} ms`)
          .join(', ')}`,
      );
    for (const [k, v] of Object.entries(x.extra?.otherRatios ?? {}))
      lines.push(`  ${x.name}: ${v === null ? '—' : v.toFixed(2)} × ${k}`);
  }
  lines.push(
    `  holds afterwards: ${fmtInt(c.active)} active (confirmed ${fmtInt(c.expectedActive)}), ${fmtInt(c.settled)} settled (confirmed ${fmtInt(c.expectedSettled)}), ` +
      `${c.otherClosed} otherwise closed; ${c.accountsOff} accounts off, ${c.heldSumsOff} held sums off their holds: ${c.ok ? 'exact' : 'MISMATCH'}`,
    '',
  );
  return lines;
}

/** The batch SQL alone section (scenario 10): what bounds the batch figure in the database. */
function bookLines(b: BookAloneResult | null): string[] {
  if (!b) return ['Batch SQL alone skipped (BENCH_SKIP_BOOK_ALONE=1)', ''];
  const rows: string[][] = [
    ['usage_book alone (pgbench)', 'calls', 'events/s', 'PostgreSQL CPU', 'µs CPU per event'],
    ...b.runs.map((r) => [
      r.name,
      fmtInt(r.calls),
      fmtInt(r.eventsPerSec),
      fmtPct(r.pgbench.cpu?.postgresPct ?? null),
      r.pgCpuUsPerEvent === null ? '—' : r.pgCpuUsPerEvent.toFixed(1),
    ]),
  ];
  return [
    `Batch SQL alone: the service's usage_book, ${b.eventsPerCall} events a call over ${fmtInt(b.accounts)} accounts, on its tables after the run (no Node.js); ` +
      `${fmtInt(b.bookedEvents)} of ${fmtInt(b.expectedEvents)} events booked: ${b.ok ? 'exact' : 'MISMATCH'}`,
    table(rows),
    '',
  ];
}
