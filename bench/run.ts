/**
 * `npm run bench`: the service on a fresh database, driven over HTTP on loopback, beside
 * pgbench doing the same SQL work per event on the same server, in one run. Prints each
 * figure next to its pgbench ceiling and writes bench/results/latest.json.
 *
 * Env: DATABASE_URL (server to create throw-away databases on; unset: embedded PostgreSQL),
 * BENCH_SECONDS (per scenario, default 10), BENCH_ACCOUNTS (default 1000), PGBENCH (binary),
 * DB_POOL_SIZE (passed through to the service), BENCH_NODE_ARGS (node flags for the service,
 * e.g. "--cpu-prof --cpu-prof-dir=bench/results/prof"), BENCH_HOLD_ACCOUNTS (accounts the
 * authorize scenarios spread over, default 200), BENCH_SKIP_HOLDS=1 (no spend-control
 * scenarios), BENCH_SKIP_STATEMENT=1 (no statement bench).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decimal } from 'decimal.js';
import { CpuProbe, CpuUsage, rssMiB } from './lib/cpu.js';
import { BenchDatabases, prepareDatabases, serverSettings, XidCounter } from './lib/db.js';
import { Checker, closedLoop, HttpClient, HttpResponse, Job, openLoop } from './lib/load.js';
import { PgbenchResult, preparePgbenchDatabase, runPgbench } from './lib/pgbench.js';
import { fmtCpu, fmtInt, fmtMs, fmtPct, ScenarioReport, toReport } from './lib/report.js';
import { table } from './lib/table.js';
import { RunningService, startService } from './lib/service.js';
import { mapLimit, round, sleep } from './lib/stats.js';
import { holdsScenarios, type HoldsOutcome, type Measured } from './scenarios/authorize.js';
import { statementBench, type StatementBenchResult } from './statement-bench.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(HERE, '..', '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const MAIN_JS = join(ROOT, 'dist', 'src', 'main.js');

const envInt = (name: string, dflt: number): number => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

const CFG = {
  accounts: envInt('BENCH_ACCOUNTS', 1000),
  seconds: envInt('BENCH_SECONDS', 10),
  warmupSeconds: 2,
  concurrency: 64,
  /** Connections for authorize with hold, and pgbench clients beside it. */
  authorizeConcurrency: 32,
  holdAccounts: 0, // set below: BENCH_HOLD_ACCOUNTS, at most BENCH_ACCOUNTS
  batchSize: 500,
  batchConcurrency: 4,
  openRate: 1000,
  setupConcurrency: 32,
  pgbenchClients: 16,
  pgbenchThreads: 2,
  pgbench: process.env.PGBENCH || (existsSync('/usr/bin/pgbench') ? '/usr/bin/pgbench' : 'pgbench'),
  maxErrorRate: 0.001,
  initialCredit: '1000000.00',
};
CFG.holdAccounts = Math.min(CFG.accounts, envInt('BENCH_HOLD_ACCOUNTS', 200));

const TARGETS = {
  singleRatio: 0.5,
  hotRatio: 0.5,
  batchEventsPerSec: 30_000,
  openP99Ms: 20,
  authorizeRatio: 0.5,
  authorizeOpenP99Ms: 10,
};

const log = (m: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

async function main(): Promise<number> {
  const startedAt = new Date();
  const t0 = performance.now();
  if (!existsSync(MAIN_JS))
    throw new Error(`${MAIN_JS} is missing: run "npm run build" first (npm run bench does)`);
  mkdirSync(RESULTS_DIR, { recursive: true });

  const cleanups: (() => Promise<void>)[] = [];
  // One cleanup pass, shared by the normal end, a failure and a signal (whichever comes first).
  let cleaning: Promise<void> | null = null;
  const runOne = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      log(`cleanup failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const runCleanups = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (let fn = cleanups.pop(); fn; fn = cleanups.pop()) await runOne(fn);
    })());
  /** Registers a cleanup; one registered after cleaning began (a signal mid-start) runs at once. */
  const onCleanup = (fn: () => Promise<void>): void => {
    if (cleaning) void cleaning.then(() => runOne(fn));
    else cleanups.push(fn);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // ---- databases ---------------------------------------------------------------------
    const dbs: BenchDatabases = await prepareDatabases(log);
    onCleanup(() => dbs.cleanup());
    const settings = await serverSettings(dbs.pgbenchUrl);
    log(
      `PostgreSQL ${dbs.serverVersion} (${dbs.source}); ${Object.entries(settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
    await preparePgbenchDatabase(dbs.pgbenchUrl, CFG.accounts);
    let preflight: CpuUsage;
    {
      const idle = new CpuProbe({ postmaster: dbs.postmasterPid });
      await sleep(1000);
      const c = (preflight = idle.stop());
      const busy = (c.otherPct ?? 0) + (c.postgresPct ?? 0);
      log(
        `machine before the run: ${c.cores} cores, ${fmtPct(busy)} of one core busy with other work`,
      );
      if (busy > 20)
        log('WARNING: other processes are using the CPU; every figure below is disturbed by them');
    }

    // ---- service -----------------------------------------------------------------------
    const adminKey = `admin_${randomBytes(24).toString('hex')}`;
    const gatewayKey = `gw_${randomBytes(24).toString('hex')}`;
    const svc: RunningService = await startService({
      mainJs: MAIN_JS,
      cwd: ROOT,
      databaseUrl: dbs.serviceUrl,
      adminKey,
      gatewayKey,
      logFile: join(RESULTS_DIR, 'service.log'),
      nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
    });
    onCleanup(() => svc.stop());
    const rss: Record<string, number | null> = { start: rssMiB(svc.pid) };
    log(
      `service pid ${svc.pid} on 127.0.0.1:${svc.port}, RSS ${fmtMs(rss.start)} MiB (DB_POOL_SIZE=${process.env.DB_POOL_SIZE ?? 'default'})`,
    );

    const xids = await XidCounter.open(dbs.pgbenchUrl);
    onCleanup(() => xids.close());
    const client = new HttpClient(svc.port, CFG.concurrency);
    onCleanup(() => Promise.resolve(client.close()));
    const checkAlive = (): void => {
      if (svc.exited()) throw new Error(`the service died:\n${svc.logTail()}`);
    };

    // ---- setup through the API -----------------------------------------------------------
    const adminJson = async <T = { id: string }>(
      method: string,
      path: string,
      body?: unknown,
      headers: OutgoingHttpHeaders = {},
    ): Promise<T> => {
      const s = body === undefined ? undefined : JSON.stringify(body);
      const r = await client.request(
        method,
        path,
        {
          authorization: `Bearer ${adminKey}`,
          ...(s === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) }),
          ...headers,
        },
        s,
      );
      if (r.status < 200 || r.status >= 300)
        throw new Error(`${method} ${path} → ${r.status}: ${r.body.slice(0, 300)}`);
      return JSON.parse(r.body) as T;
    };
    const tSetup = performance.now();
    const accountIds: string[] = new Array<string>(CFG.accounts);
    const tokenIds: string[] = new Array<string>(CFG.accounts);
    const tokenKeys: string[] = new Array<string>(CFG.accounts);
    await mapLimit(
      Array.from({ length: CFG.accounts }, (_, i) => i),
      CFG.setupConcurrency,
      async (i) => {
        const acc = await adminJson('POST', '/v1/admin/accounts', { name: `bench ${i}` });
        accountIds[i] = acc.id;
        await adminJson(
          'POST',
          `/v1/admin/accounts/${acc.id}/adjustments`,
          { amount: CFG.initialCredit, reason: 'bench' },
          { 'idempotency-key': `bench-credit-${acc.id}` },
        );
        const tok = await adminJson<{ id: string; key: string }>(
          'POST',
          `/v1/admin/accounts/${acc.id}/tokens`,
          { name: 'bench' },
        );
        tokenIds[i] = tok.id;
        tokenKeys[i] = tok.key;
      },
    );
    const setupSeconds = (performance.now() - tSetup) / 1000;
    rss.afterSetup = rssMiB(svc.pid);
    log(
      `setup: ${CFG.accounts} accounts credited ${CFG.initialCredit} with one token each in ${setupSeconds.toFixed(1)} s`,
    );

    // ---- load generator ------------------------------------------------------------------
    const runTag = Date.now().toString(36);
    let seq = 0;
    const perAccount = new Int32Array(CFG.accounts);
    const tails = tokenIds.map(
      (t) =>
        `","tokenId":"${t}","model":"gpt-image-2","statusCode":200,"usage":{"inputTokens":89,"outputTokens":1145}}`,
    );
    const eventWithId = (acct: number, requestId: string): string =>
      `{"requestId":"${requestId}${tails[acct]}`;
    const eventJson = (acct: number): string => eventWithId(acct, `b${runTag}-${seq++}`);
    const gwAuth = `Bearer ${gatewayKey}`;
    const headers = (job: Job): OutgoingHttpHeaders => ({
      'content-type': 'application/json',
      'content-length': job.body.length, // ASCII only
      authorization: gwAuth,
    });
    const charges = new Set<string>();
    let sampleNext = true;
    let rr = 0;
    const single = (acct: number): Job => {
      const keepBody = sampleNext;
      sampleNext = false;
      return { path: '/v1/usage-events', body: eventJson(acct), accounts: [acct], keepBody };
    };
    const nextSpread = (): Job => single(rr++ % CFG.accounts);
    const nextHot = (): Job => single(0);
    const nextBatch = (): Job => {
      const accounts = new Array<number>(CFG.batchSize);
      const parts = new Array<string>(CFG.batchSize);
      for (let i = 0; i < CFG.batchSize; i++) {
        const a = rr++ % CFG.accounts;
        accounts[i] = a;
        parts[i] = eventJson(a);
      }
      return {
        path: '/v1/usage-events/batch',
        body: `{"events":[${parts.join(',')}]}`,
        accounts,
        keepBody: true,
      };
    };
    const checkSingle: Checker = (job, res) => {
      if (res.status === 201) {
        if (res.body) charges.add(String((JSON.parse(res.body) as { charge: string }).charge));
        return { ok: [true] };
      }
      return { ok: [false], error: `HTTP ${res.status}: ${res.body}` };
    };
    const checkBatch: Checker = (job, res) => {
      if (res.status !== 200)
        return { ok: job.accounts.map(() => false), error: `HTTP ${res.status}: ${res.body}` };
      const results = (JSON.parse(res.body) as { results: { outcome: string; charge?: string }[] })
        .results;
      let error: string | undefined;
      const ok = job.accounts.map((_, i) => {
        const r = results[i];
        if (r?.outcome === 'charged') {
          if (r.charge) charges.add(r.charge);
          return true;
        }
        error ??= `batch result ${i}: ${JSON.stringify(r)}`;
        return false;
      });
      return { ok, error };
    };

    const scenarios: ScenarioReport[] = [];
    const pgbenchRuns: PgbenchResult[] = [];
    const pgb = async (
      script: string,
      o: { sql?: string; clients?: number } = {},
    ): Promise<PgbenchResult> => {
      const clients = o.clients ?? CFG.pgbenchClients;
      log(
        `pgbench ${script}: -c ${clients} -j ${CFG.pgbenchThreads} -T ${CFG.seconds} -M prepared`,
      );
      const r = await runPgbench({
        url: dbs.pgbenchUrl,
        script,
        sql: o.sql,
        clients,
        threads: CFG.pgbenchThreads,
        seconds: CFG.seconds,
        bin: CFG.pgbench,
        accounts: CFG.accounts,
        postmasterPid: dbs.postmasterPid,
      });
      pgbenchRuns.push(r);
      log(
        `  → ${fmtInt(r.eventsPerSec)} events/s (tps ${r.tps}), latency avg ${fmtMs(r.latencyAvgMs)} ms, failed ${r.failed}`,
      );
      log(`  cpu: ${fmtCpu(r.cpu)}`);
      return r;
    };
    const closed = async <J extends Job = Job>(
      next: () => J,
      concurrency: number,
      seconds: number,
      check: Checker,
      o: { perAccount?: Int32Array; send?: (job: J) => Promise<HttpResponse> } = {},
    ): Promise<Measured> => {
      checkAlive();
      const x0 = await xids.next();
      const probe = new CpuProbe({ service: svc.pid, postmaster: dbs.postmasterPid });
      const r = await closedLoop<J>({
        client,
        headers,
        concurrency,
        seconds,
        next,
        check,
        perAccount: o.perAccount ?? perAccount,
        send: o.send,
      });
      const cpu = probe.stop();
      const txns = (await xids.next()) - x0;
      checkAlive();
      return { r, cpu, txns };
    };
    const open = async (
      next: () => Job,
      rate: number,
      seconds: number,
      check: Checker,
      counts: Int32Array = perAccount,
    ): Promise<Measured & { maxSendLagMs: number }> => {
      checkAlive();
      const x0 = await xids.next();
      const probe = new CpuProbe({ service: svc.pid, postmaster: dbs.postmasterPid });
      const r = await openLoop({
        client,
        headers,
        rate,
        seconds,
        next,
        check,
        perAccount: counts,
      });
      const cpu = probe.stop();
      const txns = (await xids.next()) - x0;
      checkAlive();
      return { r, cpu, txns, maxSendLagMs: r.maxSendLagMs };
    };
    const withTxns = (s: ScenarioReport, txns: number): ScenarioReport => {
      s.extra = {
        ...s.extra,
        writeTransactions: txns,
        eventsPerTransaction: txns > 0 ? round(s.okEvents / txns, 1) : null,
      };
      return s;
    };
    const announce = (s: ScenarioReport): void => {
      scenarios.push(s);
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
    };

    // (1) single events over all accounts
    log(`warm-up: single events, ${CFG.concurrency} connections, ${CFG.warmupSeconds} s`);
    await closed(nextSpread, CFG.concurrency, CFG.warmupSeconds, checkSingle);
    log(
      `(1) single events over ${CFG.accounts} accounts: closed loop, ${CFG.concurrency} connections, ${CFG.seconds} s`,
    );
    {
      const { r, cpu, txns } = await closed(nextSpread, CFG.concurrency, CFG.seconds, checkSingle);
      const p = await pgb('spread');
      announce(
        withTxns(
          toReport(
            'single_spread',
            `single events, ${CFG.accounts} accounts`,
            r,
            cpu,
            p,
            `≥ ${TARGETS.singleRatio} × pgbench`,
            (_e, _l, ratio) => ratio !== null && ratio >= TARGETS.singleRatio,
          ),
          txns,
        ),
      );
    }

    // (2) single events on one hot account
    log(
      `(2) single events on one hot account: closed loop, ${CFG.concurrency} connections, ${CFG.seconds} s`,
    );
    {
      const { r, cpu, txns } = await closed(nextHot, CFG.concurrency, CFG.seconds, checkSingle);
      const p = await pgb('hot');
      announce(
        withTxns(
          toReport(
            'single_hot',
            'single events, 1 hot account',
            r,
            cpu,
            p,
            `≥ ${TARGETS.hotRatio} × pgbench hot`,
            (_e, _l, ratio) => ratio !== null && ratio >= TARGETS.hotRatio,
          ),
          txns,
        ),
      );
    }

    // (3) batches
    log(
      `(3) batches of ${CFG.batchSize}: closed loop, ${CFG.batchConcurrency} concurrent, ${CFG.seconds} s (after 1 s warm-up)`,
    );
    {
      await closed(nextBatch, CFG.batchConcurrency, 1, checkBatch);
      const { r, cpu, txns } = await closed(
        nextBatch,
        CFG.batchConcurrency,
        CFG.seconds,
        checkBatch,
      );
      const p = await pgb('batch');
      announce(
        withTxns(
          toReport(
            'batch',
            `batches of ${CFG.batchSize} (pgbench: 100/txn)`,
            r,
            cpu,
            p,
            `≥ ${fmtInt(TARGETS.batchEventsPerSec)} events/s`,
            (eps) => eps >= TARGETS.batchEventsPerSec,
          ),
          txns,
        ),
      );
    }

    // (4) open loop at a fixed rate
    log(
      `(4) open loop: ${CFG.openRate} single events/s for ${CFG.seconds} s, latency from the scheduled send time`,
    );
    {
      const { r, cpu, txns, maxSendLagMs } = await open(
        nextSpread,
        CFG.openRate,
        CFG.seconds,
        checkSingle,
      );
      const rep = toReport(
        'open_loop',
        `open loop ${fmtInt(CFG.openRate)} events/s`,
        r,
        cpu,
        null,
        `p99 < ${TARGETS.openP99Ms} ms`,
        (_e, l) => l.p99 < TARGETS.openP99Ms,
      );
      rep.extra = { maxSendLagMs: round(maxSendLagMs) };
      announce(withTxns(rep, txns));
    }
    // (5) one connection, back to back: the latency of one event with nothing else going on
    const serialSeconds = Math.min(3, CFG.seconds);
    log(`(5) single events, 1 connection back to back, ${serialSeconds} s: the latency floor`);
    {
      const { r, cpu, txns } = await closed(nextSpread, 1, serialSeconds, checkSingle);
      const rep = toReport(
        'serial',
        'single events, 1 connection',
        r,
        cpu,
        null,
        '(latency floor)',
        () => true,
      );
      rep.informational = true;
      announce(withTxns(rep, txns));
    }

    // (6)–(8) spend control: authorize with hold, closed and open loop; authorize + event
    let holds: HoldsOutcome | null = null;
    if (process.env.BENCH_SKIP_HOLDS !== '1') {
      holds = await holdsScenarios({
        client,
        headers,
        keys: tokenKeys,
        accounts: CFG.accounts,
        holdAccounts: CFG.holdAccounts,
        runTag,
        seconds: CFG.seconds,
        warmupSeconds: CFG.warmupSeconds,
        authorizeConcurrency: CFG.authorizeConcurrency,
        eventConcurrency: CFG.concurrency,
        openRate: CFG.openRate,
        eventPgbenchClients: CFG.pgbenchClients,
        eventBody: eventWithId,
        checkEvent: checkSingle,
        perAccount,
        closed: (o) =>
          closed(o.next, o.concurrency, o.seconds, o.check, {
            perAccount: o.perAccount,
            send: o.send,
          }),
        open: (o) => open(o.next, o.rate, o.seconds, o.check, o.perAccount),
        pgb: (o) => pgb(o.script, { sql: o.sql, clients: o.clients }),
        announce,
        withTxns,
        log,
        pgbenchUrl: dbs.pgbenchUrl,
        serviceUrl: dbs.serviceUrl,
        accountIds,
        singlePgbench: pgbenchRuns.find((p) => p.script === 'spread') ?? null,
        singleService: scenarios.find((s) => s.id === 'single_spread') ?? null,
        targets: {
          authorizeRatio: TARGETS.authorizeRatio,
          authorizeOpenP99Ms: TARGETS.authorizeOpenP99Ms,
        },
      });
    }
    rss.end = rssMiB(svc.pid);

    // ---- every balance = credit − charged events × charge ---------------------------------
    const totalErrors = scenarios.reduce((a, s) => a + s.errorEvents, 0);
    const verify: Record<string, unknown> = { charges: [...charges] };
    let verifyFailed = false;
    if (charges.size === 1) {
      const charge = new Decimal([...charges][0]);
      const mismatches: string[] = [];
      await mapLimit(accountIds, CFG.setupConcurrency, async (id, i) => {
        const acc = await adminJson<{ balance: string }>('GET', `/v1/admin/accounts/${id}`);
        const expected = new Decimal(CFG.initialCredit).minus(charge.times(perAccount[i]));
        if (!new Decimal(acc.balance).eq(expected)) {
          mismatches.push(
            `account #${i}: balance ${acc.balance}, expected ${expected.toFixed()} (${perAccount[i]} events)`,
          );
        }
      });
      verify.accountsChecked = accountIds.length;
      verify.mismatches = mismatches.length;
      verify.samples = mismatches.slice(0, 5);
      verify.hotAccountEvents = perAccount[0];
      verifyFailed = mismatches.length > 0 && totalErrors === 0;
      log(
        `balances: ${accountIds.length - mismatches.length}/${accountIds.length} exact (credit − confirmed events × ${charge.toFixed()}); ` +
          `hot account took ${fmtInt(perAccount[0])} events` +
          (mismatches.length
            ? `; e.g. ${mismatches[0]}${totalErrors ? ' (errors occurred, so a mismatch may be a request that committed after its client gave up)' : ''}`
            : ''),
      );
    } else {
      log(
        `balances not verified: ${charges.size} distinct charges seen (${[...charges].join(', ')})`,
      );
    }
    // (9) a month's statement for an account with 1,000,000 usage events
    let statement: StatementBenchResult | null = null;
    if (process.env.BENCH_SKIP_STATEMENT !== '1') {
      log('(9) statement: 1,000,000 usage events in one account, then its month statement timed');
      statement = await statementBench({
        pgUrl: dbs.serviceUrl,
        baseUrl: `http://127.0.0.1:${svc.port}`,
        adminKey,
      });
      log(
        `  → p50 ${fmtMs(statement.p50Ms)} ms, max ${fmtMs(statement.maxMs)} ms over ${statement.runs} runs (${fmtInt(statement.events)} events)`,
      );
    }
    const rssFinal = rssMiB(svc.pid);

    // ---- report ----------------------------------------------------------------------------
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
      ...scenarios.map((s) => [
        s.name,
        fmtInt(s.eventsPerSec),
        s.pgbench ? fmtInt(s.pgbench.eventsPerSec) : '—',
        s.ratio === null ? '—' : s.ratio.toFixed(2),
        fmtMs(s.latencyMs.p50),
        fmtMs(s.latencyMs.p99),
        `${s.errorEvents}/${fmtInt(s.events)}`,
        s.target,
        s.informational ? '—' : s.met ? 'yes' : 'NO',
      ]),
    ];
    const pgRows: string[][] = [
      ['pgbench script', 'clients', 'tps', 'events/s', 'lat avg ms', 'p50 ms', 'p99 ms', 'failed'],
      ...pgbenchRuns.map((p) => [
        p.script + (p.eventsPerTxn > 1 ? ` (${p.eventsPerTxn} events/txn)` : ''),
        String(p.clients),
        fmtInt(p.tps),
        fmtInt(p.eventsPerSec),
        fmtMs(p.latencyAvgMs),
        fmtMs(p.p50Ms),
        fmtMs(p.p99Ms),
        String(p.failed),
      ]),
    ];
    const totalSeconds = (performance.now() - t0) / 1000;
    // Another job on the machine (tests, builds) takes CPU from the service and PostgreSQL alike.
    const disturbed = [
      ...scenarios.map((s) => ({ name: s.name, cpu: s.cpu })),
      ...pgbenchRuns.map((p) => ({ name: `pgbench ${p.script}`, cpu: p.cpu })),
    ].filter((x) => (x.cpu?.otherPct ?? 0) > 20);
    const out: string[] = [
      '',
      `Billing service bench — ${startedAt.toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, PostgreSQL ${dbs.serverVersion} (${dbs.source})`,
      `Service: ${CFG.accounts} accounts, ${CFG.concurrency} keep-alive connections for single events, batches of ${CFG.batchSize} × ${CFG.batchConcurrency} concurrent, ${CFG.seconds} s per scenario. pgbench: -c ${CFG.pgbenchClients} -j ${CFG.pgbenchThreads} -T ${CFG.seconds} -M prepared.`,
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
      ...holdsLines(holds),
      statement
        ? `Statement of a month with ${fmtInt(statement.events)} usage events: p50 ${fmtMs(statement.p50Ms)} ms, max ${fmtMs(statement.maxMs)} ms over ${statement.runs} runs (target < 300 ms: ${statement.maxMs < 300 ? 'yes' : 'NO'})`
        : 'Statement bench skipped (BENCH_SKIP_STATEMENT=1)',
      '',
      'CPU during each scenario (% of one core):',
      ...scenarios.map((s) => `  ${s.name}: ${fmtCpu(s.cpu)}`),
      ...pgbenchRuns.map((p) => `  pgbench ${p.script}: ${fmtCpu(p.cpu)}`),
      '',
      'Service write transactions (server-wide transaction ids used during each scenario):',
      ...scenarios.map(
        (s) =>
          `  ${s.name}: ${fmtInt(Number(s.extra?.writeTransactions))} transactions, ${String(s.extra?.eventsPerTransaction ?? '—')} events each`,
      ),
      '',
      `Service RSS: ${fmtMs(rss.start)} MiB at start, ${fmtMs(rss.afterSetup)} MiB after setup, ${fmtMs(rss.end)} MiB after the scenarios, ${fmtMs(rssFinal)} MiB at the end`,
      `Setup: ${setupSeconds.toFixed(1)} s. Total bench: ${totalSeconds.toFixed(0)} s.`,
    ];
    const failures: string[] = [];
    for (const s of scenarios) {
      if (s.events > 0 && s.errorEvents / s.events > CFG.maxErrorRate) {
        failures.push(
          `${s.name}: ${s.errorEvents} of ${s.events} events failed (> ${CFG.maxErrorRate * 100}%): ${s.errorSamples.join(' | ')}`,
        );
      }
    }
    if (holds && !holds.check.ok && totalErrors === 0)
      failures.push(
        `holds do not match the confirmed authorizes and events: ${holds.check.samples.join(' | ') || JSON.stringify(holds.check)}`,
      );
    if (verifyFailed)
      failures.push(
        `balances do not match the confirmed events: ${JSON.stringify(verify.samples)}`,
      );
    for (const p of pgbenchRuns)
      if (p.failed > 0) failures.push(`pgbench ${p.script}: ${p.failed} failed transactions`);
    if (failures.length) out.push('', 'BENCH FAILED:', ...failures.map((f) => `  ${f}`));
    out.push('', `Results: ${join(RESULTS_DIR, 'latest.json')}`);
    process.stdout.write(out.join('\n') + '\n');

    writeFileSync(
      join(RESULTS_DIR, 'latest.json'),
      JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          totalSeconds: round(totalSeconds, 1),
          machine: {
            cpus: cpus().length,
            cpuModel: cpus()[0]?.model,
            memGiB: round(totalmem() / 2 ** 30, 1),
            node: process.version,
          },
          postgres: { version: dbs.serverVersion, source: dbs.source, settings },
          config: { ...CFG, dbPoolSize: process.env.DB_POOL_SIZE ?? null },
          targets: TARGETS,
          preflightCpu: preflight,
          setupSeconds: round(setupSeconds, 2),
          scenarios,
          pgbench: pgbenchRuns,
          rssMiB: { ...rss, final: rssFinal },
          verify,
          holds: holds && { holdAmount: holds.holdAmount, check: holds.check },
          statement,
          failures,
        },
        null,
        2,
      ) + '\n',
    );
    return failures.length ? 1 : 0;
  } finally {
    await runCleanups();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The spend-control section under the tables. */
function holdsLines(h: HoldsOutcome | null): string[] {
  if (!h) return ['Spend-control scenarios skipped (BENCH_SKIP_HOLDS=1)', ''];
  const c = h.check;
  const lines = [
    `Spend control: authorize holds ${h.holdAmount} per request; authorize over ${CFG.holdAccounts} accounts with ${CFG.authorizeConcurrency} connections (pgbench authorize: -c ${CFG.authorizeConcurrency}); ` +
      `authorize + event over ${CFG.accounts} accounts with ${CFG.concurrency} connections (pgbench authorize+event: -c ${CFG.pgbenchClients}, both transactions per run).`,
  ];
  for (const s of h.scenarios) {
    const steps = s.extra?.stepLatencyMs;
    if (steps)
      lines.push(
        `  ${s.name}: ${Object.entries(steps)
          .map(([k, l]) => `${k} p50 ${fmtMs(l.p50)} / p99 ${fmtMs(l.p99)} ms`)
          .join(', ')}`,
      );
    for (const [k, v] of Object.entries(s.extra?.otherRatios ?? {}))
      lines.push(`  ${s.name}: ${v === null ? '—' : v.toFixed(2)} × ${k}`);
  }
  lines.push(
    `  holds afterwards: ${fmtInt(c.active)} active (confirmed ${fmtInt(c.expectedActive)}), ${fmtInt(c.settled)} settled (confirmed ${fmtInt(c.expectedSettled)}), ` +
      `${c.otherClosed} otherwise closed; ${c.accountsOff} accounts off, ${c.heldSumsOff} held sums off their holds: ${c.ok ? 'exact' : 'MISMATCH'}`,
    '',
  );
  return lines;
}

let interrupted = false;

main().then(
  async (code) => {
    await sleep(0);
    process.exit(code);
  },
  (err: unknown) => {
    // After a signal the cleanup (and exit 130) is under way; its broken connections are no news.
    if (interrupted) return;
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(2);
  },
);
