import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuProbe, CpuUsage } from './cpu.js';
import { withClient } from './db.js';
import { round, summarize } from './stats.js';

/** A charge of the service's kind (the provider example: gpt-image-2, 89 in / 1145 out, ratio 1.2). */
export const EVENT_CHARGE = '0.0420744';
export const BATCH_EVENTS_PER_TXN = 100;

/** The scripts defined here; other scenarios pass their own SQL (PgbenchOptions.sql). */
export type BuiltinScript = 'spread' | 'hot' | 'batch';

export interface PgbenchResult {
  script: string;
  /** Transactions per second pgbench schedules (-R, an open loop), or null for a closed loop. */
  rate: number | null;
  clients: number;
  threads: number;
  seconds: number;
  eventsPerTxn: number;
  tps: number;
  eventsPerSec: number;
  transactions: number;
  failed: number;
  latencyAvgMs: number;
  /** From pgbench's per-transaction log (-l): per transaction, so per 100 events for batch.
   * With a rate, from each transaction's scheduled start (the log's time includes the lag). */
  p50Ms: number;
  p99Ms: number;
  cpu: CpuUsage;
  command: string;
}

/** The same three statements per event the service runs: event row, balance update, ledger row. */
const scripts = (accounts: number): Record<BuiltinScript, string> => ({
  spread: `\\set aid random(1, ${accounts})
\\set tag random(1, 9000000000000000000)
BEGIN;
INSERT INTO events (request_id, account_id, charge) VALUES ('pgb-' || :client_id || '-' || :tag, :aid, ${EVENT_CHARGE});
UPDATE accounts SET balance = balance - ${EVENT_CHARGE} WHERE id = :aid RETURNING balance AS bal \\gset
INSERT INTO ledger (account_id, amount, balance_after, reference) VALUES (:aid, -${EVENT_CHARGE}, :bal, 'pgb-' || :client_id || '-' || :tag);
END;
`,
  hot: `\\set aid 1
\\set tag random(1, 9000000000000000000)
BEGIN;
INSERT INTO events (request_id, account_id, charge) VALUES ('pgb-' || :client_id || '-' || :tag, :aid, ${EVENT_CHARGE});
UPDATE accounts SET balance = balance - ${EVENT_CHARGE} WHERE id = :aid RETURNING balance AS bal \\gset
INSERT INTO ledger (account_id, amount, balance_after, reference) VALUES (:aid, -${EVENT_CHARGE}, :bal, 'pgb-' || :client_id || '-' || :tag);
END;
`,
  // 100 events in one transaction, set-based like the service's batch path: lock the accounts
  // in id order (no deadlocks between clients), insert the 100 events, update the 100 balances
  // and insert the 100 ledger rows with each balance_after. The 100 accounts are distinct and
  // pseudo-random (a stride coprime with 1000 from a random start).
  batch: `\\set seed random(0, ${accounts - 1})
\\set tag random(1, 9000000000000000000)
BEGIN;
SELECT id FROM accounts WHERE id IN (SELECT 1 + ((:seed + g * 7919) % ${accounts}) FROM generate_series(1, ${BATCH_EVENTS_PER_TXN}) g) ORDER BY id FOR NO KEY UPDATE;
INSERT INTO events (request_id, account_id, charge) SELECT 'pgb-' || :client_id || '-' || :tag || '-' || g, 1 + ((:seed + g * 7919) % ${accounts}), ${EVENT_CHARGE} FROM generate_series(1, ${BATCH_EVENTS_PER_TXN}) g;
WITH u AS (UPDATE accounts a SET balance = a.balance - ${EVENT_CHARGE} FROM generate_series(1, ${BATCH_EVENTS_PER_TXN}) g WHERE a.id = 1 + ((:seed + g * 7919) % ${accounts}) RETURNING a.id, a.balance) INSERT INTO ledger (account_id, amount, balance_after, reference) SELECT id, -${EVENT_CHARGE}, balance, 'pgb-' || :client_id || '-' || :tag || '-' || id FROM u;
END;
`,
});

/** Tables mirroring the service's work, 1,000 accounts with a balance. */
export async function preparePgbenchDatabase(url: string, accounts: number): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(38,10) NOT NULL);
      CREATE TABLE events (
        id bigserial PRIMARY KEY,
        request_id text NOT NULL UNIQUE,
        account_id int NOT NULL,
        charge numeric(38,10) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE ledger (
        id bigserial PRIMARY KEY,
        account_id int NOT NULL,
        amount numeric(38,10) NOT NULL,
        balance_after numeric(38,10) NOT NULL,
        reference text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );`);
    await c.query(`INSERT INTO accounts SELECT g, 1000000 FROM generate_series(1, $1::int) g`, [
      accounts,
    ]);
    await c.query('VACUUM ANALYZE accounts');
  });
}

export interface PgbenchOptions {
  url: string;
  /** A built-in script's name, or the name of `sql`. */
  script: string;
  /** The script's text when it is not a built-in one. */
  sql?: string;
  /** Events one run of the script stands for (default: 100 for batch, else 1). */
  eventsPerTxn?: number;
  clients: number;
  threads: number;
  seconds: number;
  /** Transactions per second over all clients (-R): an open loop, like the service's. */
  rate?: number;
  bin: string;
  /** Accounts in the table (ids 1..accounts); the batch stride needs accounts ≥ 100 and coprime with 7919. */
  accounts: number;
  /** For CPU sampling of the server's processes; null when the server is not local. */
  postmasterPid: number | null;
}

export async function runPgbench(o: PgbenchOptions): Promise<PgbenchResult> {
  const u = new URL(o.url);
  const work = mkdtempSync(join(tmpdir(), 'billing-bench-pgbench-'));
  try {
    const builtin = scripts(o.accounts) as Record<string, string | undefined>;
    const sql = o.sql ?? builtin[o.script];
    if (sql === undefined) throw new Error(`pgbench: no script ${o.script}`);
    const scriptFile = join(work, `${o.script.replace(/[^\w-]/g, '_')}.sql`);
    writeFileSync(scriptFile, sql);
    const logPrefix = join(work, 'txlog');
    const args = [
      '-n',
      '-c',
      String(o.clients),
      '-j',
      String(o.threads),
      '-T',
      String(o.seconds),
      ...(o.rate ? ['-R', String(o.rate)] : []),
      '-M',
      'prepared',
      '-f',
      scriptFile,
      '-l',
      `--log-prefix=${logPrefix}`,
      '-h',
      u.hostname,
      '-p',
      u.port || '5432',
      '-U',
      decodeURIComponent(u.username || 'postgres'),
      decodeURIComponent(u.pathname.slice(1)),
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: decodeURIComponent(u.password) };
    const sslmode = u.searchParams.get('sslmode');
    if (sslmode) env.PGSSLMODE = sslmode;

    const probe = new CpuProbe({ postmaster: o.postmasterPid });
    const { code, output } = await new Promise<{ code: number | null; output: string }>(
      (resolve, reject) => {
        const child = spawn(o.bin, args, { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
        probe.watchPgbench(child.pid);
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, output }));
      },
    );
    const cpu = probe.stop();
    if (code !== 0) throw new Error(`pgbench (${o.script}) exited with ${code}:\n${output}`);

    const num = (re: RegExp): number => {
      const m = re.exec(output);
      return m ? Number(m[1]) : NaN;
    };
    const tps = num(/tps = ([\d.]+)/);
    if (!Number.isFinite(tps))
      throw new Error(`pgbench (${o.script}): no "tps =" in its output:\n${output}`);
    const eventsPerTxn = o.eventsPerTxn ?? (o.script === 'batch' ? BATCH_EVENTS_PER_TXN : 1);

    // Per-transaction log: "client_id transaction_no time_us script_no epoch epoch_us".
    const lat: number[] = [];
    for (const f of readdirSync(work).filter((n) => n.startsWith('txlog.'))) {
      for (const line of readFileSync(join(work, f), 'utf8').split('\n')) {
        const parts = line.split(' ');
        if (parts.length >= 3) lat.push(Number(parts[2]) / 1000);
      }
    }
    const s = summarize(lat);
    return {
      script: o.script,
      rate: o.rate ?? null,
      clients: o.clients,
      threads: o.threads,
      seconds: o.seconds,
      eventsPerTxn,
      tps: round(tps, 1),
      eventsPerSec: round(tps * eventsPerTxn, 0),
      transactions: num(/number of transactions actually processed: (\d+)/),
      failed: num(/number of failed transactions: (\d+)/) || 0,
      latencyAvgMs: num(/latency average = ([\d.]+) ms/),
      p50Ms: round(s.p50, 2),
      p99Ms: round(s.p99, 2),
      cpu,
      command: `pgbench ${args.join(' ')}`.replace(work, '<tmp>').replace(work, '<tmp>'),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
