import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import getPort from 'get-port';
import pg from 'pg';

/**
 * The service as `npm start` runs it: a child process of dist/src/main.js (built here first),
 * for what only a real process shows: start-up refusals, SIGTERM, the embedded database.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'dist', 'src', 'main.js');
const run = promisify(execFile);

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(env: Record<string, string>, cwd = ROOT): Started {
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
  return { child, output: () => out, exited };
}

async function waitHealthy(
  port: number,
  exited: Promise<number | null>,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let gone = false;
  void exited.then(() => (gone = true));
  while (Date.now() < deadline && !gone) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) return;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('service did not become healthy');
}

describe('the service process', () => {
  const server = process.env.TEST_PG_SERVER_URL ?? '';
  const dbName = `billing_proc_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const dbUrl = (() => {
    const u = new URL(server);
    u.pathname = `/${dbName}`;
    return u.toString();
  })();
  const admin = `admin_${randomBytes(16).toString('hex')}`;
  const gateway = `gw_${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    await run(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: ROOT },
    );
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    await c.end();
  }, 120_000);
  afterAll(async () => {
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await c.end();
  });

  it.each([
    [{}, ['DATABASE_URL', 'ADMIN_API_KEY', 'GATEWAY_API_KEY']],
    [{ DATABASE_URL: 'postgres://x@127.0.0.1:1/x' }, ['ADMIN_API_KEY', 'GATEWAY_API_KEY']],
    [
      { DATABASE_URL: 'postgres://x@127.0.0.1:1/x', ADMIN_API_KEY: 'a'.repeat(20) },
      ['GATEWAY_API_KEY'],
    ],
  ])('refuses to start in production without %p, naming %p', async (env, missing) => {
    const s = start({ NODE_ENV: 'production', ...env });
    expect(await s.exited).toBe(1);
    for (const name of missing)
      expect(s.output()).toContain(`${name}: required when NODE_ENV=production`);
    expect(s.output()).not.toContain('embedded PostgreSQL');
    expect(s.output()).not.toContain('Generated keys');
  });

  // Protects graceful shutdown: a SIGTERM mid-burst must not reset a request in flight or lose
  // one it acknowledged. Clients stop once an answer says Connection: close, as HTTP clients do.
  it('drains a 32-connection burst on SIGTERM: no request reset, every acknowledged event booked, exit 0', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const s = start({
      DATABASE_URL: dbUrl,
      ADMIN_API_KEY: admin,
      GATEWAY_API_KEY: gateway,
      PORT: String(port),
      SHUTDOWN_GRACE_SECONDS: '15',
    });
    await waitHealthy(port, s.exited);
    const call = async (method: string, path: string, key: string, body?: unknown) => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await r.json()) as Record<string, string>;
    };
    const acc = await call('POST', '/v1/admin/accounts', admin, { name: 'Burst' });
    const token = await call('POST', `/v1/admin/accounts/${acc.id}/tokens`, admin, {
      name: 'burst',
    });

    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const acknowledged: string[] = [];
    const errors: string[] = [];
    let inFlightAtSignal = 0;
    let active = 0;
    let signalled = false;
    let seq = 0;
    const post = (requestId: string) =>
      new Promise<{ status: number; close: boolean }>((ok, fail) => {
        const body = JSON.stringify({
          requestId,
          tokenId: token.id,
          model: 'gpt-image-2-all',
          statusCode: 200,
        });
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path: '/v1/usage-events',
            method: 'POST',
            agent,
            headers: {
              Authorization: `Bearer ${gateway}`,
              'Content-Type': 'application/json',
              'Content-Length': Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              ok({ status: res.statusCode ?? 0, close: res.headers.connection === 'close' }),
            );
          },
        );
        req.on('error', fail);
        req.end(body);
      });
    const worker = async () => {
      for (;;) {
        const requestId = `burst-${seq++}`;
        active++;
        try {
          const r = await post(requestId);
          if (r.status === 201) acknowledged.push(requestId);
          else errors.push(`${requestId}: status ${r.status}`);
          if (r.close) return;
        } catch (err) {
          errors.push(`${requestId}: ${(err as Error).message}`);
          return;
        } finally {
          active--;
        }
      }
    };
    const workers = Array.from({ length: 32 }, () => worker());
    while (acknowledged.length < 300) await new Promise((r) => setTimeout(r, 5));
    inFlightAtSignal = active;
    signalled = s.child.kill('SIGTERM');
    await Promise.all(workers);
    const code = await s.exited;
    agent.destroy();

    expect(signalled).toBe(true);
    expect(inFlightAtSignal).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    expect(code).toBe(0);
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    const booked = await db.query(
      `SELECT count(*)::int AS n FROM usage_events u JOIN ledger_entries l ON l.type = 'usage' AND l.reference = u.request_id
       WHERE u.request_id = ANY($1::varchar[])`,
      [acknowledged],
    );
    await db.end();
    expect(booked.rows[0].n).toBe(acknowledged.length);
  }, 90_000);

  it('starts the embedded PostgreSQL without DATABASE_URL, refuses a second start on the same data folder by name, and stops cleanly', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'billing-start-'));
    chmodSync(cwd, 0o755); // as root, the embedded server runs as the postgres OS user
    try {
      const port = await getPort({ host: '127.0.0.1' });
      const first = start({ PORT: String(port) }, cwd);
      await waitHealthy(port, first.exited, 120_000).catch((err: Error) => {
        throw new Error(`${err.message}: ${first.output()}`);
      });
      expect(first.output()).toContain('Generated keys for this run');
      const second = start({ PORT: String(await getPort({ host: '127.0.0.1' })) }, cwd);
      expect(await second.exited).toBe(1);
      expect(second.output()).toMatch(
        /data folder .*\.data\/postgres is in use by another PostgreSQL \(pid \d+\)/,
      );
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 180_000);
});
