import type { OutgoingHttpHeaders } from 'node:http';
import type { BenchConfig } from './config.js';
import { CpuProbe, type CpuUsage } from './cpu.js';
import type { BenchDatabases, XidCounter } from './db.js';
import {
  type Checker,
  closedLoop,
  type HttpClient,
  type HttpResponse,
  type Job,
  type LoadResult,
  openLoop,
} from './load.js';
import { type PgbenchResult, runPgbench } from './pgbench.js';
import { fmtCpu, fmtInt, fmtMs, type MetTarget, type ScenarioReport, toReport } from './report.js';
import type { RunningService } from './service.js';
import { round } from './stats.js';

/** One measured load run: what the load generator saw, CPU, and write transactions used. */
export interface Measured {
  r: LoadResult;
  cpu: CpuUsage;
  txns: number;
}

/** Adds the write transactions a scenario used, and events per transaction, to its report. */
export const withTxns = (s: ScenarioReport, txns: number): ScenarioReport => {
  s.extra = {
    ...s.extra,
    writeTransactions: txns,
    eventsPerTransaction: txns > 0 ? round(s.okEvents / txns, 1) : null,
  };
  return s;
};

/**
 * Runs load against the service (closed or open loop) and pgbench against its database, each
 * with CPU sampled and server-wide transaction ids counted, and keeps every result for the
 * report in the order announced.
 */
export class ScenarioRunner {
  readonly scenarios: ScenarioReport[] = [];
  readonly pgbenchRuns: PgbenchResult[] = [];

  constructor(
    private readonly o: {
      cfg: BenchConfig;
      dbs: BenchDatabases;
      svc: RunningService;
      xids: XidCounter;
      client: HttpClient;
      headers: (job: Job) => OutgoingHttpHeaders;
      /** Charged events per account, unless a run passes its own. */
      perAccount: Int32Array;
      log: (m: string) => void;
    },
  ) {}

  get client(): HttpClient {
    return this.o.client;
  }

  checkAlive(): void {
    if (this.o.svc.exited()) throw new Error(`the service died:\n${this.o.svc.logTail()}`);
  }

  async closed<J extends Job = Job>(
    next: () => J,
    concurrency: number,
    seconds: number,
    check: Checker,
    o: { perAccount?: Int32Array; send?: (job: J) => Promise<HttpResponse> } = {},
  ): Promise<Measured> {
    this.checkAlive();
    const x0 = await this.o.xids.next();
    const probe = new CpuProbe({ service: this.o.svc.pid, postmaster: this.o.dbs.postmasterPid });
    const r = await closedLoop<J>({
      client: this.o.client,
      headers: this.o.headers,
      concurrency,
      seconds,
      next,
      check,
      perAccount: o.perAccount ?? this.o.perAccount,
      send: o.send,
    });
    const cpu = probe.stop();
    const txns = (await this.o.xids.next()) - x0;
    this.checkAlive();
    return { r, cpu, txns };
  }

  async open(
    next: () => Job,
    rate: number,
    seconds: number,
    check: Checker,
    counts: Int32Array = this.o.perAccount,
  ): Promise<Measured & { maxSendLagMs: number }> {
    this.checkAlive();
    const x0 = await this.o.xids.next();
    const probe = new CpuProbe({ service: this.o.svc.pid, postmaster: this.o.dbs.postmasterPid });
    const r = await openLoop({
      client: this.o.client,
      headers: this.o.headers,
      rate,
      seconds,
      next,
      check,
      perAccount: counts,
    });
    const cpu = probe.stop();
    const txns = (await this.o.xids.next()) - x0;
    this.checkAlive();
    return { r, cpu, txns, maxSendLagMs: r.maxSendLagMs };
  }

  /** pgbench on its database; with `rate`, an open loop at that many transactions a second. */
  async pgb(
    script: string,
    o: { sql?: string; clients?: number; rate?: number } = {},
  ): Promise<PgbenchResult> {
    const { cfg, log } = this.o;
    const clients = o.clients ?? cfg.pgbenchClients;
    log(
      `pgbench ${script}: -c ${clients} -j ${cfg.pgbenchThreads} -T ${cfg.seconds}${o.rate ? ` -R ${o.rate}` : ''} -M prepared`,
    );
    const r = await runPgbench({
      url: this.o.dbs.pgbenchUrl,
      script,
      sql: o.sql,
      clients,
      threads: cfg.pgbenchThreads,
      seconds: cfg.seconds,
      rate: o.rate,
      bin: cfg.pgbench,
      accounts: cfg.accounts,
      postmasterPid: this.o.dbs.postmasterPid,
    });
    this.pgbenchRuns.push(r);
    log(
      `  → ${fmtInt(r.eventsPerSec)} events/s (tps ${r.tps}), latency avg ${fmtMs(r.latencyAvgMs)} ms, failed ${r.failed}`,
    );
    log(`  cpu: ${fmtCpu(r.cpu)}`);
    return r;
  }

  /**
   * A closed loop for the configured seconds, then pgbench's `script` doing the same work, and
   * the scenario announced with its ratio to pgbench and its target.
   */
  async closedBesidePgbench(o: {
    id: string;
    name: string;
    next: () => Job;
    concurrency: number;
    check: Checker;
    script: string;
    target: string;
    met: MetTarget;
  }): Promise<void> {
    const { r, cpu, txns } = await this.closed(o.next, o.concurrency, this.o.cfg.seconds, o.check);
    const p = await this.pgb(o.script);
    this.announce(withTxns(toReport(o.id, o.name, r, cpu, p, o.target, o.met), txns));
  }

  /** Records a scenario for the report and logs its figures. */
  announce(s: ScenarioReport): void {
    const { log } = this.o;
    this.scenarios.push(s);
    log(
      `  → ${fmtInt(s.eventsPerSec)} events/s, p50 ${fmtMs(s.latencyMs.p50)} ms, p99 ${fmtMs(s.latencyMs.p99)} ms, ` +
        `errors ${s.errorEvents}/${s.events}${s.errorSamples.length ? ` (e.g. ${s.errorSamples[0]})` : ''}`,
    );
    log(`  cpu: ${fmtCpu(s.cpu)}`);
    if (s.extra?.writeTransactions !== undefined) {
      log(
        `  database: ${fmtInt(Number(s.extra.writeTransactions))} write transactions, ${String(s.extra.eventsPerTransaction)} events per transaction`,
      );
    }
  }
}
