import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { HttpClient } from '../../bench/lib/load.js';
import { startService, type RunningService } from '../../bench/lib/service.js';
import { sleep } from '../../bench/lib/stats.js';
import { MAIN_JS, ROOT } from './env.js';
import { honourKeepAliveHint } from './http.js';

export const newKeys = (): { adminKey: string; gatewayKey: string } => ({
  adminKey: `admin_${randomBytes(24).toString('hex')}`,
  gatewayKey: `gw_${randomBytes(24).toString('hex')}`,
});

// ---- a service that can be killed and restarted ----------------------------------------------

export interface Target {
  readonly name: string;
  /** The client of the running process, or null while it is down. */
  client(): HttpClient | null;
}

/** One service instance on a database: start, SIGKILL, restart (on a new free port). */
export class ServiceSlot implements Target {
  private svc: RunningService | null = null;
  private http: HttpClient | null = null;
  starts = 0;

  constructor(
    readonly name: string,
    private readonly o: {
      databaseUrl: string;
      adminKey: string;
      gatewayKey: string;
      logDir: string;
      maxSockets: number;
    },
  ) {}

  client(): HttpClient | null {
    return this.http;
  }

  get pid(): number | null {
    return this.svc?.pid ?? null;
  }

  get port(): number | null {
    return this.svc?.port ?? null;
  }

  running(): RunningService | null {
    return this.svc;
  }

  async start(): Promise<RunningService> {
    if (this.svc) throw new Error(`${this.name} is already running`);
    this.starts++;
    const svc = await startService({
      mainJs: MAIN_JS,
      cwd: ROOT,
      databaseUrl: this.o.databaseUrl,
      adminKey: this.o.adminKey,
      gatewayKey: this.o.gatewayKey,
      logFile: join(this.o.logDir, `${this.name}-${this.starts}.log`),
    });
    this.svc = svc;
    this.http = honourKeepAliveHint(new HttpClient(svc.port, this.o.maxSockets));
    return svc;
  }

  /** SIGKILL: no shutdown hook runs, open transactions die with their connections. */
  async sigkill(): Promise<void> {
    const svc = this.svc;
    if (!svc) return;
    process.kill(svc.pid, 'SIGKILL');
    while (!svc.exited()) await sleep(2);
    // Requests sent during those milliseconds met a dying process; from now on, a down one.
    const http = this.http;
    this.svc = null;
    this.http = null;
    http?.close();
    await svc.stop(); // only detaches listeners and closes the log now
  }

  async stop(): Promise<void> {
    const svc = this.svc;
    const http = this.http;
    this.svc = null;
    this.http = null;
    http?.close();
    if (svc) await svc.stop();
  }
}
