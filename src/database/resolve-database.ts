import { join } from 'node:path';
import { startEmbeddedPostgres } from './embedded.js';

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL with its data kept under `.data/`
 * (git-ignored) so `npm start` finds yesterday's balances.
 */
export async function resolveDatabaseUrl(
  log: (msg: string) => void,
): Promise<{ url: string; stop?: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (url) return { url };
  const dataDir = join(process.cwd(), '.data', 'postgres');
  log(`DATABASE_URL is not set: starting the embedded PostgreSQL in ${dataDir}`);
  const db = await startEmbeddedPostgres({ dataDir, persistent: true });
  return { url: db.url, stop: () => db.stop() };
}
