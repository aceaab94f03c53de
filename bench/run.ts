/**
 * `npm run bench`: the service on a fresh database, driven over HTTP on loopback, beside
 * pgbench doing the same SQL work per event on the same server, in one run. Prints each
 * figure next to its pgbench ceiling and writes bench/results/latest.json.
 *
 * This file orchestrates: databases, the service, the accounts, the scenarios in order
 * (bench/scenarios/), the balance check, the report and the cleanup.
 *
 * Env: DATABASE_URL (server to create throw-away databases on; unset: embedded PostgreSQL),
 * BENCH_SECONDS (per scenario, default 10), BENCH_ACCOUNTS (default 1000), PGBENCH (binary),
 * DB_POOL_SIZE (passed through to the service), BENCH_NODE_ARGS (node flags for the service,
 * e.g. "--cpu-prof --cpu-prof-dir=bench/results/prof"), BENCH_HOLD_ACCOUNTS (accounts the
 * authorize scenarios spread over, default 200), BENCH_SKIP_HOLDS=1 (no spend-control
 * scenarios), BENCH_SKIP_STATEMENT=1 (no statement bench), BENCH_SKIP_BOOK_ALONE=1 (no batch
 * SQL alone).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { adminApi } from './lib/admin.js';
import { Cleanups } from './lib/cleanup.js';
import { CFG, log, MAIN_JS, RESULTS_DIR, ROOT, SERVICE_NODE_ARGS, TARGETS } from './lib/config.js';
import { CpuProbe, CpuUsage, rssMiB } from './lib/cpu.js';
import { prepareDatabases, serverSettings, XidCounter } from './lib/db.js';
import { createAccounts } from './lib/fixture.js';
import { HttpClient } from './lib/load.js';
import { preparePgbenchDatabase } from './lib/pgbench.js';
import { fmtMs, fmtPct } from './lib/report.js';
import { ScenarioRunner } from './lib/runner.js';
import { startService } from './lib/service.js';
import { round, sleep } from './lib/stats.js';
import { benchFailures, type BenchSummary, summaryLines } from './lib/summary.js';
import { makeTraffic } from './lib/traffic.js';
import { verifyBalances } from './lib/verify.js';
import { spendControl } from './scenarios/authorize.js';
import { batches } from './scenarios/batch.js';
import { bookAlone } from './scenarios/book-alone.js';
import {
  singleHot,
  singleOpenLoop,
  singleSerial,
  singleSpread,
} from './scenarios/single-events.js';
import { statementScenario } from './scenarios/statement.js';
import { storagePerEvent } from './scenarios/storage.js';

const cleanups = new Cleanups(log);

async function main(): Promise<number> {
  const startedAt = new Date();
  const t0 = performance.now();
  if (!existsSync(MAIN_JS))
    throw new Error(`${MAIN_JS} is missing: run "npm run build" first (npm run bench does)`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const untrapSignals = cleanups.trapSignals();

  try {
    // ---- databases ---------------------------------------------------------------------
    const dbs = await prepareDatabases(log);
    cleanups.add(() => dbs.cleanup());
    const settings = await serverSettings(dbs.pgbenchUrl);
    log(
      `PostgreSQL ${dbs.serverVersion} (${dbs.source}); ${Object.entries(settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
    await preparePgbenchDatabase(dbs.pgbenchUrl, CFG.accounts);
    const preflight = await idleMachine(dbs.postmasterPid);

    // ---- service -----------------------------------------------------------------------
    const adminKey = `admin_${randomBytes(24).toString('hex')}`;
    const gatewayKey = `gw_${randomBytes(24).toString('hex')}`;
    const svc = await startService({
      mainJs: MAIN_JS,
      cwd: ROOT,
      databaseUrl: dbs.serviceUrl,
      adminKey,
      gatewayKey,
      logFile: join(RESULTS_DIR, 'service.log'),
      nodeArgs: [
        ...SERVICE_NODE_ARGS,
        ...(process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
      ],
    });
    cleanups.add(() => svc.stop());
    const rss: Record<string, number | null> = { start: rssMiB(svc.pid) };
    log(
      `service pid ${svc.pid} on 127.0.0.1:${svc.port}, RSS ${fmtMs(rss.start)} MiB (DB_POOL_SIZE=${process.env.DB_POOL_SIZE ?? 'default'})`,
    );
    const xids = await XidCounter.open(dbs.pgbenchUrl);
    cleanups.add(() => xids.close());
    const client = new HttpClient(svc.port, CFG.concurrency);
    cleanups.add(() => Promise.resolve(client.close()));
    const admin = adminApi(client, adminKey);

    // ---- setup through the API ---------------------------------------------------------
    const fixture = await createAccounts(admin, CFG);
    rss.afterSetup = rssMiB(svc.pid);
    log(
      `setup: ${CFG.accounts} accounts credited ${CFG.initialCredit} with one token each in ${fixture.setupSeconds.toFixed(1)} s`,
    );

    // ---- scenarios, in order -----------------------------------------------------------
    const traffic = makeTraffic({
      tokenIds: fixture.tokenIds,
      gatewayKey,
      accounts: CFG.accounts,
      batchSize: CFG.batchSize,
    });
    const run = new ScenarioRunner({
      cfg: CFG,
      dbs,
      svc,
      xids,
      client,
      headers: traffic.headers,
      perAccount: traffic.perAccount,
      log,
    });
    await singleSpread(run, traffic); // (1)
    await singleHot(run, traffic); // (2)
    await batches(run, traffic); // (3)
    await singleOpenLoop(run, traffic); // (4)
    await singleSerial(run, traffic); // (5)
    const holds = await spendControl(run, traffic, fixture, dbs); // (6)–(8)
    rss.end = rssMiB(svc.pid);
    // Before the statement bench, whose events are written straight in SQL.
    const storage = await storagePerEvent(dbs);

    const balances = await verifyBalances({
      admin,
      cfg: CFG,
      accountIds: fixture.accountIds,
      perAccount: traffic.perAccount,
      charges: traffic.charges,
      totalErrors: run.scenarios.reduce((a, s) => a + s.errorEvents, 0),
      log,
    });
    const statement = await statementScenario({
      pgUrl: dbs.serviceUrl,
      baseUrl: `http://127.0.0.1:${svc.port}`,
      adminKey,
    }); // (9)
    const rssFinal = rssMiB(svc.pid);
    const book =
      process.env.BENCH_SKIP_BOOK_ALONE === '1'
        ? null
        : await bookAlone({ url: dbs.serviceUrl, postmasterPid: dbs.postmasterPid }); // (10)

    // ---- report ------------------------------------------------------------------------
    const summary: BenchSummary = {
      startedAt,
      totalSeconds: (performance.now() - t0) / 1000,
      setupSeconds: fixture.setupSeconds,
      cfg: CFG,
      targets: TARGETS,
      dbs,
      scenarios: run.scenarios,
      pgbenchRuns: run.pgbenchRuns,
      holds,
      statement,
      book,
      storage,
      rss,
      rssFinal,
    };
    const out = summaryLines(summary);
    const failures = benchFailures(summary, balances);
    if (failures.length) out.push('', 'BENCH FAILED:', ...failures.map((f) => `  ${f}`));
    out.push('', `Results: ${join(RESULTS_DIR, 'latest.json')}`);
    process.stdout.write(out.join('\n') + '\n');

    writeFileSync(
      join(RESULTS_DIR, 'latest.json'),
      JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          totalSeconds: round(summary.totalSeconds, 1),
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
          setupSeconds: round(fixture.setupSeconds, 2),
          scenarios: run.scenarios,
          pgbench: run.pgbenchRuns,
          rssMiB: { ...rss, final: rssFinal },
          verify: balances.verify,
          holds: holds && { holdAmount: holds.holdAmount, check: holds.check },
          storage,
          statement,
          bookAlone: book,
          failures,
        },
        null,
        2,
      ) + '\n',
    );
    return failures.length ? 1 : 0;
  } finally {
    await cleanups.run();
    untrapSignals();
  }
}

/** CPU in use before the run starts; a busy machine disturbs every figure. */
async function idleMachine(postmasterPid: number | null): Promise<CpuUsage> {
  const idle = new CpuProbe({ postmaster: postmasterPid });
  await sleep(1000);
  const c = idle.stop();
  const busy = (c.otherPct ?? 0) + (c.postgresPct ?? 0);
  log(`machine before the run: ${c.cores} cores, ${fmtPct(busy)} of one core busy with other work`);
  if (busy > 20)
    log('WARNING: other processes are using the CPU; every figure below is disturbed by them');
  return c;
}

main().then(
  async (code) => {
    await sleep(0);
    process.exit(code);
  },
  (err: unknown) => {
    // After a signal the cleanup (and exit 130) is under way; its broken connections are no news.
    if (cleanups.interrupted) return;
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(2);
  },
);
