import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench/lib
export const ROOT = resolve(HERE, '..', '..', '..');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const MAIN_JS = join(ROOT, 'dist', 'src', 'main.js');
/** Node's flags for the service, as `npm start` and the Dockerfile run it (BENCH_NODE_ARGS adds to them). */
export const SERVICE_NODE_ARGS = ['--max-semi-space-size=64'];

const envInt = (name: string, dflt: number): number => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

const accounts = envInt('BENCH_ACCOUNTS', 1000);

/** The run's shape (env overrides in run.ts's header); written into the results as `config`. */
export const CFG = {
  accounts,
  seconds: envInt('BENCH_SECONDS', 10),
  warmupSeconds: 2,
  concurrency: 64,
  /** Connections for authorize with hold, and pgbench clients beside it. */
  authorizeConcurrency: 32,
  /** BENCH_HOLD_ACCOUNTS, at most BENCH_ACCOUNTS. */
  holdAccounts: Math.min(accounts, envInt('BENCH_HOLD_ACCOUNTS', 200)),
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
export type BenchConfig = typeof CFG;

export const TARGETS = {
  singleRatio: 0.5,
  hotRatio: 0.5,
  batchEventsPerSec: 30_000,
  openP99Ms: 20,
  authorizeRatio: 0.5,
  authorizeOpenP99Ms: 10,
  /** Bytes on disk per usage event: its row, roll-up and request register, its ledger share. */
  storageBytesPerEvent: 600,
};

export const log = (m: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};
