import type { CpuUsage } from './cpu.js';
import type { LoadResult } from './load.js';
import type { PgbenchResult } from './pgbench.js';
import { LatencySummary, round, summarize } from './stats.js';

export interface ScenarioReport {
  id: string;
  name: string;
  events: number;
  okEvents: number;
  errorEvents: number;
  errorSamples: string[];
  requests: number;
  seconds: number;
  eventsPerSec: number;
  latencyMs: LatencySummary;
  pgbench: PgbenchResult | null;
  ratio: number | null;
  target: string;
  met: boolean;
  /** A diagnostic row without a target. */
  informational?: boolean;
  cpu: CpuUsage | null;
  extra?: {
    writeTransactions?: number;
    eventsPerTransaction?: number | null;
    maxSendLagMs?: number;
    /** Per HTTP call of a multi-call scenario (e.g. authorize, then the usage event). */
    stepLatencyMs?: Record<string, LatencySummary>;
    /** Other ratios printed under the table, e.g. against another scenario's pgbench. */
    otherRatios?: Record<string, number | null>;
    /** What authorize held per request, as the service answered. */
    holdAmount?: string;
  };
}

/** Latency summary rounded to 0.01 ms, for the report. */
export const roundedSummary = (samples: ArrayLike<number>): LatencySummary => {
  const l = summarize(samples);
  return {
    count: l.count,
    p50: round(l.p50),
    p90: round(l.p90),
    p99: round(l.p99),
    max: round(l.max),
    mean: round(l.mean),
  };
};

/** Whether a scenario met its target, from its events/s, latency and ratio to pgbench. */
export type MetTarget = (eps: number, lat: LatencySummary, ratio: number | null) => boolean;

export function toReport(
  id: string,
  name: string,
  r: LoadResult,
  cpu: CpuUsage | null,
  pgb: PgbenchResult | null,
  target: string,
  met: MetTarget,
): ScenarioReport {
  const eventsPerSec = r.seconds > 0 ? r.okEvents / r.seconds : 0;
  const latencyMs = summarize(r.latencies);
  const ratio = pgb && pgb.eventsPerSec > 0 ? eventsPerSec / pgb.eventsPerSec : null;
  return {
    id,
    name,
    events: r.events,
    okEvents: r.okEvents,
    errorEvents: r.errorEvents,
    errorSamples: r.errorSamples,
    requests: r.requests,
    seconds: round(r.seconds, 2),
    eventsPerSec: round(eventsPerSec, 0),
    latencyMs: roundedSummary(r.latencies),
    pgbench: pgb,
    ratio: ratio === null ? null : round(ratio, 2),
    target,
    met: r.errorEvents === 0 && met(eventsPerSec, latencyMs, ratio),
    cpu,
  };
}

export const fmtInt = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '—'
    : Math.round(x).toLocaleString('en-US');
export const fmtMs = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(2);
export const fmtPct = (x: number | null): string => (x === null ? '—' : `${Math.round(x)}%`);
export const fmtCpu = (c: CpuUsage | null): string => {
  if (!c) return '—';
  const parts: string[] = [];
  if (c.servicePct !== null) parts.push(`service ${fmtPct(c.servicePct)}`);
  parts.push(`postgres ${fmtPct(c.postgresPct)}`);
  if (c.pgbenchPct !== null) parts.push(`pgbench ${fmtPct(c.pgbenchPct)}`);
  if (c.servicePct !== null) parts.push(`load generator ${fmtPct(c.generatorPct)}`);
  parts.push(`other processes ${fmtPct(c.otherPct)}`);
  return `${parts.join(', ')} (machine busy ${fmtPct(c.machineBusyPct)} of ${c.cores * 100}%)`;
};
