import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import getPort from 'get-port';
import { HttpClient } from './load.js';
import { sleep } from './stats.js';

export interface RunningService {
  pid: number;
  port: number;
  logFile: string;
  stop(): Promise<void>;
  exited(): boolean;
  logTail(lines?: number): string;
}

/** Starts `node dist/src/main.js` on a free loopback port and waits for GET /health 200. */
export async function startService(o: {
  mainJs: string;
  cwd: string;
  databaseUrl: string;
  adminKey: string;
  gatewayKey: string;
  logFile: string;
  timeoutMs?: number;
  /** Extra node flags for the service, e.g. --cpu-prof (from BENCH_NODE_ARGS). */
  nodeArgs?: string[];
}): Promise<RunningService> {
  const port = await getPort({ host: '127.0.0.1' });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    DATABASE_URL: o.databaseUrl,
    ADMIN_API_KEY: o.adminKey,
    GATEWAY_API_KEY: o.gatewayKey,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'warn',
  };
  const log = createWriteStream(o.logFile);
  const child: ChildProcess = spawn(process.execPath, [...(o.nodeArgs ?? []), o.mainJs], {
    cwd: o.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const state: { exit: string | null } = { exit: null };
  // If this process exits without stop() (a signal), take the service down with it.
  const killOnExit = (): void => {
    if (state.exit === null) child.kill('SIGTERM');
  };
  process.on('exit', killOnExit);
  const exitedP = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      state.exit = `exit code ${code}, signal ${signal}`;
      resolve();
    }),
  );
  const logTail = (lines = 30): string => {
    try {
      return readFileSync(o.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    if (state.exit === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (state.exit === null) child.kill('SIGKILL');
      }, 10_000);
      await exitedP;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    await new Promise<void>((r) => log.end(r));
  };

  const client = new HttpClient(port, 1);
  const deadline = Date.now() + (o.timeoutMs ?? 90_000);
  try {
    for (;;) {
      if (state.exit !== null)
        throw new Error(`the service exited before it was healthy (${state.exit}):\n${logTail()}`);
      if (Date.now() > deadline)
        throw new Error(
          `the service was not healthy within ${o.timeoutMs ?? 90_000} ms:\n${logTail()}`,
        );
      try {
        const r = await client.request('GET', '/health', {});
        if (r.status === 200) break;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.close();
  }
  return {
    pid: child.pid ?? 0,
    port,
    logFile: o.logFile,
    stop,
    exited: () => state.exit !== null,
    logTail,
  };
}
