import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  const pg = globalThis.__EMBEDDED_PG__;
  if (pg) await pg.stop();
  const dir = globalThis.__EMBEDDED_PG_DIR__;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
