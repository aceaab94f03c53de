/**
 * Shared pieces of the fault suite (npm run test:crash, test:instances, soak): a harness with
 * cleanup on every exit path, a service "slot" that can be SIGKILLed and restarted, the
 * account set-up through the API, an event planner that prices every event independently of
 * the service (from the contract's seeded prices and group ratios, exact in decimal), a
 * gateway simulator that resends until it gets a definitive answer, and the books check by
 * direct SQL followed by `reconcile-cli`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decimal } from 'decimal.js';
import pg from 'pg';
import { HttpClient, type HttpResponse } from '../bench/lib/load.js';
import { startService, type RunningService } from '../bench/lib/service.js';
import { mapLimit, sleep } from '../bench/lib/stats.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/faults
export const ROOT = resolve(HERE, '..', '..');
export const MAIN_JS = join(ROOT, 'dist', 'src', 'main.js');
export const RECONCILE_JS = join(ROOT, 'dist', 'src', 'ledger', 'reconcile-cli.js');
/** Git-ignore this folder: service logs and soak.json land here. */
export const RESULTS_DIR = join(ROOT, 'faults', 'results');

/** Decimal with room for every digit a balance can hold (numeric(38,10)). */
export const Dec = Decimal.clone({ precision: 80, rounding: Decimal.ROUND_HALF_UP });
export type Dec = Decimal;
export const ZERO: Dec = new Dec(0);

export const envInt = (name: string, dflt: number): number => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function makeLogger(tag: string): (m: string) => void {
  return (m: string): void => {
    process.stdout.write(`[${tag} ${new Date().toISOString().slice(11, 23)}] ${m}\n`);
  };
}

export const newKeys = (): { adminKey: string; gatewayKey: string } => ({
  adminKey: `admin_${randomBytes(24).toString('hex')}`,
  gatewayKey: `gw_${randomBytes(24).toString('hex')}`,
});

// ---- harness -------------------------------------------------------------------------------

export interface Harness {
  log: (m: string) => void;
  /** Registers a cleanup; they run last-in first-out at the end, on failure or on a signal. */
  onCleanup(fn: () => Promise<void> | void): void;
  /** A folder under faults/results for this run's logs. */
  outDir: string;
}

/**
 * Runs `main` (true = passed) with cleanups on every path, a hard time limit, and exits with
 * 0 (passed), 1 (a check failed) or 2 (the test itself broke).
 */
export function runMain(
  name: string,
  limitSeconds: number,
  main: (h: Harness) => Promise<boolean>,
): void {
  const log = makeLogger(name);
  const outDir = join(RESULTS_DIR, name);
  mkdirSync(outDir, { recursive: true });
  const cleanups: (() => Promise<void> | void)[] = [];
  let cleaning: Promise<void> | null = null;
  let finished = false;
  const runCleanups = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (let fn = cleanups.pop(); fn; fn = cleanups.pop()) {
        try {
          await fn();
        } catch (e) {
          log(`cleanup failed: ${errText(e)}`);
        }
      }
    })());
  const finish = (code: number): void => {
    if (finished) return;
    finished = true;
    void runCleanups().finally(() => process.exit(code));
  };
  const h: Harness = {
    log,
    outDir,
    onCleanup: (fn) => {
      if (cleaning) void cleaning.then(fn);
      else cleanups.push(fn);
    },
  };
  process.once('SIGINT', () => {
    log('SIGINT: cleaning up');
    finish(130);
  });
  process.once('SIGTERM', () => {
    log('SIGTERM: cleaning up');
    finish(130);
  });
  const timer = setTimeout(() => {
    log(`FAILED: the test did not finish within ${limitSeconds} s`);
    finish(2);
  }, limitSeconds * 1000);
  timer.unref();
  main(h).then(
    (ok) => finish(ok ? 0 : 1),
    (err: unknown) => {
      if (finished) return;
      process.stderr.write(
        `${name} broke: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      finish(2);
    },
  );
}

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

/**
 * Node's agent closes an idle socket before the server's announced `Keep-Alive: timeout=N`
 * (1 s early) only when the agent has an idle timeout of its own; without one (as in
 * bench/lib/load.ts) it reuses sockets the server is closing, and now and then a request
 * meets "socket hang up" / ECONNRESET. A careful gateway honours the hint; so do we.
 */
export function honourKeepAliveHint(c: HttpClient): HttpClient {
  (c.agent as unknown as { options: { timeout?: number } }).options.timeout = 60_000;
  return c;
}

// ---- API helpers -------------------------------------------------------------------------------

export function jsonHeaders(key: string, body?: string): OutgoingHttpHeaders {
  return body === undefined
    ? { authorization: `Bearer ${key}` }
    : {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      };
}

export async function callJson<T>(
  client: HttpClient,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: OutgoingHttpHeaders = {},
): Promise<T> {
  const s = body === undefined ? undefined : JSON.stringify(body);
  const r = await client.request(method, path, { ...jsonHeaders(key, s), ...extraHeaders }, s);
  if (r.status < 200 || r.status >= 300)
    throw new Error(`${method} ${path} → ${r.status}: ${r.body.slice(0, 300)}`);
  return JSON.parse(r.body) as T;
}

/** The seeded groups' ratios, from the contract (not read back from the service). */
export const GROUP_RATIOS: Record<string, string> = { default: '1.0', image2Enterprise: '1.2' };

export interface TokenFx {
  id: string;
  key: string;
  group: string;
  ratio: Dec;
  account: number;
}

export interface AccountFx {
  id: string;
  consoleKey: string;
  credit: Dec;
  tokens: number[];
}

export interface Fixture {
  accounts: AccountFx[];
  tokens: TokenFx[];
}

/**
 * Accounts, each credited once by an adjustment (with an Idempotency-Key) and given tokens:
 * the first in the default group, any further ones in image2Enterprise.
 */
export async function setupAccounts(o: {
  clients: HttpClient[];
  adminKey: string;
  accounts: number;
  tokensPerAccount: number;
  credit: (i: number) => string;
  tag: string;
}): Promise<Fixture> {
  const accounts = new Array<AccountFx>(o.accounts);
  await mapLimit(
    Array.from({ length: o.accounts }, (_, i) => i),
    16,
    async (i) => {
      const client = o.clients[i % o.clients.length];
      const acc = await callJson<{ id: string; consoleKey: string }>(
        client,
        o.adminKey,
        'POST',
        '/v1/admin/accounts',
        { name: `${o.tag} ${i}` },
      );
      const credit = o.credit(i);
      await callJson(
        client,
        o.adminKey,
        'POST',
        `/v1/admin/accounts/${acc.id}/adjustments`,
        { amount: credit, reason: `${o.tag} opening credit` },
        { 'idempotency-key': `${o.tag}-credit-${acc.id}` },
      );
      accounts[i] = { id: acc.id, consoleKey: acc.consoleKey, credit: new Dec(credit), tokens: [] };
    },
  );
  const tokens: TokenFx[] = [];
  for (let i = 0; i < o.accounts; i++) {
    for (let t = 0; t < o.tokensPerAccount; t++) {
      const group = t === 0 ? 'default' : 'image2Enterprise';
      const tok = await callJson<{ id: string; key: string; group: string }>(
        o.clients[(i + t) % o.clients.length],
        o.adminKey,
        'POST',
        `/v1/admin/accounts/${accounts[i].id}/tokens`,
        t === 0 ? { name: `${o.tag} ${i}.${t}` } : { name: `${o.tag} ${i}.${t}`, group },
      );
      if (tok.group !== group) throw new Error(`token ${tok.id} is in ${tok.group}, not ${group}`);
      accounts[i].tokens.push(tokens.length);
      tokens.push({
        id: tok.id,
        key: tok.key,
        group,
        ratio: new Dec(GROUP_RATIOS[group]),
        account: i,
      });
    }
  }
  return { accounts, tokens };
}

// ---- deterministic randomness -----------------------------------------------------------------

export interface Rng {
  next(): number;
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
  shuffle<T>(xs: T[]): T[];
}

/** mulberry32: small, fast, reproducible from the printed seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    shuffle: (xs) => {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [xs[i], xs[j]] = [xs[j], xs[i]];
      }
      return xs;
    },
  };
}

export const seedFrom = (name: string): number => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) ? v >>> 0 : (Math.random() * 2 ** 32) >>> 0;
};

// ---- events, priced from the contract ---------------------------------------------------------

/** The seeded catalog as the contract states it (USD per 1M tokens, or flat). */
const PRICE = {
  inputText: new Dec(8),
  cachedInput: new Dec(2),
  outputImage: new Dec(30),
  partialImageOutputTokens: 100,
  perRequest: new Dec('0.03'),
  perImage: new Dec('0.03'),
};
const MILLION = new Dec(1_000_000);

export type Outcome = 'charged' | 'skipped';

export interface PlannedEvent {
  requestId: string;
  token: number;
  account: number;
  /** The body, sent verbatim on every delivery (the soak drops it once sent). */
  json: string;
  outcome: Outcome;
  reason: string | null;
  charge: Dec;
}

interface EventBody {
  requestId: string;
  tokenId: string;
  model: string;
  statusCode: number;
  errorCode?: string;
  moderated?: boolean;
  timedOut?: boolean;
  usage?: {
    inputTokens: number;
    outputTokens: number;
    inputTokensDetails?: { cachedTokens: number };
  };
  images?: number;
  partialImages?: number;
  size?: string;
  quality?: string;
}

/**
 * A random event of the three seeded models, about 12% of them skipped for each of the
 * contract's reasons, with its outcome and exact charge worked out here (scale 10).
 */
export function planEvent(r: Rng, requestId: string, fx: Fixture, token: number): PlannedEvent {
  const tok = fx.tokens[token];
  const roll = r.next();
  const model = roll < 0.55 ? 'gpt-image-2' : roll < 0.78 ? 'gpt-image-2-all' : 'gpt-image-2-vip';
  const e: EventBody = { requestId, tokenId: tok.id, model, statusCode: 200 };
  if (model === 'gpt-image-2') {
    const inputTokens = r.int(0, 3000);
    e.usage = { inputTokens, outputTokens: r.int(100, 6500) };
    if (inputTokens > 0 && r.chance(0.3))
      e.usage.inputTokensDetails = { cachedTokens: r.int(0, inputTokens) };
    if (r.chance(0.2)) e.partialImages = r.int(1, 3);
    e.size = r.pick(['1024x1024', '1024x1536', '1536x1024']);
    e.quality = r.pick(['low', 'medium', 'high']);
  } else if (model === 'gpt-image-2-vip') {
    e.images = r.int(1, 4);
  }
  // Skips, one per kind (the first rule that fits wins, as the contract orders them).
  const skip = r.next();
  let reason: string | null = null;
  if (skip < 0.04) {
    e.statusCode = r.pick([500, 502, 429]);
    reason = 'upstream_error';
  } else if (skip < 0.06) {
    if (r.chance(0.5)) e.moderated = true;
    else e.errorCode = 'moderation_blocked';
    e.statusCode = r.pick([200, 400]);
    reason = 'moderated';
  } else if (skip < 0.08 && model !== 'gpt-image-2') {
    e.timedOut = true;
    reason = 'timeout';
  } else if (skip < 0.12) {
    if (model === 'gpt-image-2' && e.usage) e.usage.outputTokens = 0;
    else e.images = 0;
    reason = 'no_output';
  }
  let charge = ZERO;
  if (reason === null) {
    let subtotal: Dec;
    if (model === 'gpt-image-2' && e.usage) {
      const cached = e.usage.inputTokensDetails?.cachedTokens ?? 0;
      const outputImageTokens =
        e.usage.outputTokens + (e.partialImages ?? 0) * PRICE.partialImageOutputTokens;
      subtotal = PRICE.inputText
        .times(e.usage.inputTokens - cached)
        .plus(PRICE.cachedInput.times(cached))
        .plus(PRICE.outputImage.times(outputImageTokens))
        .div(MILLION);
    } else if (model === 'gpt-image-2-all') {
      subtotal = PRICE.perRequest;
    } else {
      subtotal = PRICE.perImage.times(e.images ?? 1);
    }
    charge = subtotal.times(tok.ratio).toDecimalPlaces(10, Decimal.ROUND_HALF_UP);
  }
  return {
    requestId,
    token,
    account: tok.account,
    json: JSON.stringify(e),
    outcome: reason === null ? 'charged' : 'skipped',
    reason,
    charge,
  };
}

// ---- the gateway simulator ----------------------------------------------------------------------

export interface GatewayStats {
  deliveries: number;
  attempts: number;
  retries: number;
  networkErrors: number;
  down: number;
  http5xx: number;
  http409: number;
  /** Answers "duplicate" (an earlier delivery or attempt had already recorded the event). */
  duplicateAnswers: number;
  /** Events whose answer was "duplicate" after an attempt of the same delivery failed. */
  recoveredAfterFailure: number;
}

interface SingleAnswer {
  requestId: string;
  outcome: string;
  reason: string | null;
  charge: string;
  duplicate: boolean;
}

interface BatchAnswer {
  results: {
    requestId: string | null;
    outcome: string;
    charge?: string;
    reason?: string;
    error?: unknown;
  }[];
}

/**
 * Sends each delivery until it gets a definitive answer, as the gateway does: a 2xx, or a 4xx
 * other than 409. Connection errors, timeouts, a down service, 5xx and 409 are retried after
 * a short backoff. Every answer is checked against the planned outcome and charge.
 */
export class Gateway {
  readonly stats: GatewayStats = {
    deliveries: 0,
    attempts: 0,
    retries: 0,
    networkErrors: 0,
    down: 0,
    http5xx: 0,
    http409: 0,
    duplicateAnswers: 0,
    recoveredAfterFailure: 0,
  };
  readonly failures: string[] = [];
  readonly samples: string[] = [];
  /** Per request id: answers that recorded it anew (must never exceed 1). */
  readonly newAnswers = new Map<string, number>();
  /** Per target: events it recorded anew (answered charged/skipped, not duplicate). */
  readonly newByTarget = new Map<string, number>();
  private readonly auth: string;

  constructor(
    gatewayKey: string,
    private readonly o: { giveUpMs: number; max409: number } = { giveUpMs: 180_000, max409: 20 },
  ) {
    this.auth = `Bearer ${gatewayKey}`;
  }

  private fail(m: string): void {
    if (this.failures.length < 50) this.failures.push(m);
    else if (this.failures.length === 50) this.failures.push('… more failures not shown');
  }

  private sample(m: string): void {
    if (this.samples.length < 10) this.samples.push(m.slice(0, 300));
  }

  /** One delivery of `events` (a batch when asked, else exactly one event) to `target`. */
  async deliver(target: Target, events: PlannedEvent[], asBatch: boolean): Promise<void> {
    if (!asBatch && events.length !== 1) throw new Error('a single delivery has one event');
    this.stats.deliveries++;
    const path = asBatch ? '/v1/usage-events/batch' : '/v1/usage-events';
    const body = asBatch ? `{"events":[${events.map((e) => e.json).join(',')}]}` : events[0].json;
    const headers: OutgoingHttpHeaders = {
      authorization: this.auth,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    const started = Date.now();
    let failedBefore = false;
    let conflicts = 0;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        this.stats.retries++;
        await sleep(Math.min(500, 10 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
      }
      if (Date.now() - started > this.o.giveUpMs) {
        this.fail(`${target.name}: gave up on ${events[0].requestId}… after ${this.o.giveUpMs} ms`);
        return;
      }
      const client = target.client();
      if (!client) {
        this.stats.down++;
        failedBefore = true;
        continue;
      }
      this.stats.attempts++;
      let res: HttpResponse;
      try {
        res = await client.request('POST', path, headers, body);
      } catch (e) {
        this.stats.networkErrors++;
        failedBefore = true;
        this.sample(`network (${target.name}): ${errText(e)}`);
        continue;
      }
      if (res.status >= 500 || res.status === 0) {
        this.stats.http5xx++;
        failedBefore = true;
        this.sample(`HTTP ${res.status} (${target.name}): ${res.body}`);
        continue;
      }
      if (res.status === 409) {
        this.stats.http409++;
        this.sample(`HTTP 409 (${target.name}) for ${events[0].requestId}: ${res.body}`);
        if (++conflicts >= this.o.max409) {
          this.fail(`${events[0].requestId}: 409 ${conflicts} times: ${res.body.slice(0, 200)}`);
          return;
        }
        failedBefore = true;
        continue;
      }
      if (res.status < 200 || res.status >= 300) {
        this.fail(`${target.name} ${path} → ${res.status}: ${res.body.slice(0, 300)}`);
        return;
      }
      if (asBatch) this.checkBatch(target, events, res, failedBefore);
      else this.checkSingle(target, events[0], res, failedBefore);
      return;
    }
  }

  private answered(
    target: Target,
    e: PlannedEvent,
    duplicate: boolean,
    failedBefore: boolean,
  ): void {
    if (duplicate) {
      this.stats.duplicateAnswers++;
      if (failedBefore) this.stats.recoveredAfterFailure++;
      return;
    }
    this.newByTarget.set(target.name, (this.newByTarget.get(target.name) ?? 0) + 1);
    const n = (this.newAnswers.get(e.requestId) ?? 0) + 1;
    this.newAnswers.set(e.requestId, n);
    if (n > 1) this.fail(`${e.requestId} was recorded anew by ${n} answers`);
  }

  private compare(
    e: PlannedEvent,
    outcome: string,
    charge: string | undefined,
    reason: string | null | undefined,
    where: string,
  ): void {
    if (outcome !== e.outcome)
      this.fail(`${where} ${e.requestId}: outcome ${outcome}, expected ${e.outcome} (${e.json})`);
    if (charge === undefined || !new Dec(charge).eq(e.charge))
      this.fail(
        `${where} ${e.requestId}: charge ${charge}, expected ${e.charge.toFixed()} (${e.json})`,
      );
    if ((reason ?? null) !== e.reason)
      this.fail(`${where} ${e.requestId}: reason ${reason}, expected ${e.reason} (${e.json})`);
  }

  private checkSingle(
    target: Target,
    e: PlannedEvent,
    res: HttpResponse,
    failedBefore: boolean,
  ): void {
    let a: SingleAnswer;
    try {
      a = JSON.parse(res.body) as SingleAnswer;
    } catch {
      this.fail(`${target.name}: unparsable answer ${res.status}: ${res.body.slice(0, 200)}`);
      return;
    }
    const duplicate = res.status === 200;
    if (a.duplicate !== duplicate || (res.status !== 200 && res.status !== 201))
      this.fail(`${e.requestId}: HTTP ${res.status} with duplicate=${String(a.duplicate)}`);
    if (a.requestId !== e.requestId) this.fail(`${e.requestId}: answer names ${a.requestId}`);
    this.compare(e, a.outcome, a.charge, a.reason, `single@${target.name}`);
    this.answered(target, e, a.duplicate, failedBefore);
  }

  private checkBatch(
    target: Target,
    events: PlannedEvent[],
    res: HttpResponse,
    failedBefore: boolean,
  ): void {
    let a: BatchAnswer;
    try {
      a = JSON.parse(res.body) as BatchAnswer;
    } catch {
      this.fail(`${target.name}: unparsable batch answer: ${res.body.slice(0, 200)}`);
      return;
    }
    if (res.status !== 200 || !Array.isArray(a.results) || a.results.length !== events.length) {
      this.fail(
        `${target.name}: batch answer ${res.status} with ${a.results?.length} results for ${events.length}`,
      );
      return;
    }
    events.forEach((e, i) => {
      const r = a.results[i];
      if (r.requestId !== e.requestId)
        this.fail(`batch result ${i}: ${r.requestId}, expected ${e.requestId}`);
      if (r.outcome === 'rejected') {
        this.fail(`batch@${target.name} ${e.requestId} rejected: ${JSON.stringify(r.error)}`);
        return;
      }
      const duplicate = r.outcome === 'duplicate';
      // A duplicate shows what the first delivery was charged (its outcome is not repeated).
      this.compare(
        e,
        duplicate ? e.outcome : r.outcome,
        r.charge,
        duplicate ? e.reason : r.reason,
        `batch@${target.name}`,
      );
      this.answered(target, e, duplicate, failedBefore);
    });
  }
}

// ---- the books, by direct SQL --------------------------------------------------------------------

export interface BooksReport {
  failures: string[];
  lines: string[];
}

/**
 * Everything the service wrote, against what the events should have done:
 * one usage_events row per request id sent (and none other) with the planned outcome and
 * charge; one usage ledger entry of −charge per charged event and none for skipped ones;
 * per account, balance = opening credit − Σ charges = Σ ledger amounts, the opening credit
 * booked once, the daily roll-ups agreeing; per token, spent = Σ its charges.
 */
export async function verifyBooks(
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
): Promise<BooksReport> {
  const failures: string[] = [];
  const fail = (m: string): void => {
    if (failures.length < 40) failures.push(m);
    else if (failures.length === 40) failures.push('… more not shown');
  };
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    const q = async <T extends object>(sql: string): Promise<T[]> =>
      (await pool.query<T>(sql)).rows;
    const accountIdx = new Map(fx.accounts.map((a, i) => [a.id, i]));
    const tokenIdx = new Map(fx.tokens.map((t, i) => [t.id, i]));

    // usage_events
    const planned = new Map<string, PlannedEvent>();
    for (const e of events) {
      if (planned.has(e.requestId)) throw new Error(`planned twice: ${e.requestId}`);
      planned.set(e.requestId, e);
    }
    const rows = await q<{
      request_id: string;
      account_id: string;
      token_id: string;
      outcome: string;
      reason: string | null;
      charge: string;
    }>(
      `SELECT request_id, account_id::text, token_id::text, outcome, reason, charge::text FROM usage_events`,
    );
    const seen = new Set<string>();
    for (const r of rows) {
      const e = planned.get(r.request_id);
      if (!e) {
        fail(`usage_events has ${r.request_id}, which was never sent`);
        continue;
      }
      if (seen.has(r.request_id)) fail(`usage_events holds ${r.request_id} more than once`);
      seen.add(r.request_id);
      if (accountIdx.get(r.account_id) !== e.account || tokenIdx.get(r.token_id) !== e.token)
        fail(`${r.request_id}: stored on account ${r.account_id} / token ${r.token_id}`);
      if (r.outcome !== e.outcome || (r.reason ?? null) !== e.reason)
        fail(`${r.request_id}: stored ${r.outcome}/${r.reason}, expected ${e.outcome}/${e.reason}`);
      if (!new Dec(r.charge).eq(e.charge))
        fail(`${r.request_id}: stored charge ${r.charge}, expected ${e.charge.toFixed()}`);
    }
    let lost = 0;
    for (const id of planned.keys()) {
      if (!seen.has(id)) {
        lost++;
        fail(`event ${id} was sent but is not in usage_events (lost)`);
      }
    }

    // usage ledger entries: exactly one per charged event, of −charge
    const entries = await q<{ reference: string; n: string; total: string; account_id: string }>(
      `SELECT reference, COUNT(*)::text AS n, SUM(amount)::text AS total, MIN(account_id::text) AS account_id
         FROM ledger_entries WHERE type = 'usage' GROUP BY reference`,
    );
    const entryOf = new Map(entries.map((x) => [x.reference, x]));
    let chargedEvents = 0;
    for (const e of events) {
      const x = entryOf.get(e.requestId);
      if (e.outcome !== 'charged') {
        if (x) fail(`skipped event ${e.requestId} has ${x.n} usage ledger entries`);
        continue;
      }
      chargedEvents++;
      if (!x) fail(`charged event ${e.requestId} has no ledger entry`);
      else if (x.n !== '1')
        fail(`charged event ${e.requestId} has ${x.n} ledger entries (double charge)`);
      else if (!new Dec(x.total).eq(e.charge.neg()) || accountIdx.get(x.account_id) !== e.account)
        fail(
          `${e.requestId}: ledger entry ${x.total} on ${x.account_id}, expected ${e.charge.neg().toFixed()}`,
        );
    }
    for (const x of entries)
      if (!planned.has(x.reference)) fail(`usage ledger entry for unknown request ${x.reference}`);

    // accounts: balance = credit − Σ charges = Σ ledger; opening credit booked once
    const expectCharge = fx.accounts.map(() => ZERO);
    const expectCount = fx.accounts.map(() => ({ requests: 0, charged: 0, skipped: 0 }));
    const expectSpent = fx.tokens.map(() => ZERO);
    for (const e of events) {
      expectCharge[e.account] = expectCharge[e.account].plus(e.charge);
      expectSpent[e.token] = expectSpent[e.token].plus(e.charge);
      const c = expectCount[e.account];
      c.requests++;
      if (e.outcome === 'charged') c.charged++;
      else c.skipped++;
    }
    const balances = await q<{
      id: string;
      balance: string;
      ledger: string | null;
      usage: string | null;
      other: string | null;
      other_n: string;
    }>(
      `SELECT a.id::text, a.balance::text,
              (SELECT SUM(amount)::text FROM ledger_entries l WHERE l.account_id = a.id) AS ledger,
              (SELECT SUM(amount)::text FROM ledger_entries l WHERE l.account_id = a.id AND l.type = 'usage') AS usage,
              (SELECT SUM(amount)::text FROM ledger_entries l WHERE l.account_id = a.id AND l.type <> 'usage') AS other,
              (SELECT COUNT(*)::text FROM ledger_entries l WHERE l.account_id = a.id AND l.type <> 'usage') AS other_n
         FROM accounts a`,
    );
    let negative = 0;
    let checkedAccounts = 0;
    for (const b of balances) {
      const i = accountIdx.get(b.id);
      if (i === undefined) continue;
      checkedAccounts++;
      const a = fx.accounts[i];
      const expected = a.credit.minus(expectCharge[i]);
      const balance = new Dec(b.balance);
      if (balance.isNeg()) negative++;
      if (!balance.eq(expected))
        fail(
          `account #${i} ${b.id}: balance ${b.balance}, expected ${a.credit.toFixed()} − ${expectCharge[i].toFixed()} = ${expected.toFixed()}`,
        );
      if (!balance.eq(new Dec(b.ledger ?? 0)))
        fail(`account #${i} ${b.id}: balance ${b.balance} ≠ Σ ledger ${b.ledger}`);
      if (!new Dec(b.usage ?? 0).eq(expectCharge[i].neg()))
        fail(
          `account #${i}: Σ usage entries ${b.usage}, expected ${expectCharge[i].neg().toFixed()}`,
        );
      if (b.other_n !== '1' || !new Dec(b.other ?? 0).eq(a.credit))
        fail(
          `account #${i}: ${b.other_n} non-usage entries totalling ${b.other}, expected the one credit ${a.credit.toFixed()}`,
        );
    }
    if (checkedAccounts !== fx.accounts.length)
      fail(`found ${checkedAccounts} of ${fx.accounts.length} accounts`);

    // daily roll-ups (what statements read) agree with the events
    const daily = await q<{
      account_id: string;
      requests: string;
      charged: string;
      skipped: string;
      charge: string;
    }>(
      `SELECT account_id::text, SUM(requests)::text AS requests, SUM(charged)::text AS charged,
              SUM(skipped)::text AS skipped, SUM(charge)::text AS charge
         FROM usage_daily GROUP BY account_id`,
    );
    const dailyOf = new Map(daily.map((d) => [d.account_id, d]));
    fx.accounts.forEach((a, i) => {
      const d = dailyOf.get(a.id);
      const c = expectCount[i];
      const got = d
        ? `${d.requests}/${d.charged}/${d.skipped}/${new Dec(d.charge).toFixed()}`
        : '0/0/0/0';
      const want = `${c.requests}/${c.charged}/${c.skipped}/${expectCharge[i].toFixed()}`;
      if (got !== want)
        fail(`account #${i}: usage_daily requests/charged/skipped/charge ${got}, expected ${want}`);
    });

    // token spend
    const spent = await q<{ id: string; spent: string }>(
      `SELECT id::text, spent::text FROM api_tokens`,
    );
    for (const s of spent) {
      const t = tokenIdx.get(s.id);
      if (t !== undefined && !new Dec(s.spent).eq(expectSpent[t]))
        fail(`token ${s.id}: spent ${s.spent}, expected ${expectSpent[t].toFixed()}`);
    }

    const total = expectCharge.reduce((x, y) => x.plus(y), ZERO);
    return {
      failures,
      lines: [
        `usage_events: ${rows.length} rows for ${planned.size} request ids sent (${lost} lost, ${rows.length - seen.size} extra)`,
        `ledger: ${entries.length} usage entries for ${chargedEvents} charged events; ${events.length - chargedEvents} skipped`,
        `balances: ${checkedAccounts} accounts = opening credit − Σ charges = Σ ledger (total charged ${total.toFixed()} USD; ${negative} account(s) below zero)`,
        `roll-ups and token spend checked for every account and token`,
      ],
    };
  } finally {
    await pool.end();
  }
}

/** Runs `node dist/src/ledger/reconcile-cli.js` on the database, as `npm run reconcile` does. */
export function runReconcile(url: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [RECONCILE_JS], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output: output.trim() });
    });
  });
}

/** Books check, then the reconcile CLI; logs both and returns the failures. */
export async function checkBooks(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
): Promise<string[]> {
  const books = await verifyBooks(url, fx, events);
  for (const l of books.lines) log(`  ${l}`);
  for (const f of books.failures) log(`  BOOKS: ${f}`);
  const rec = await runReconcile(url);
  log(
    `  npm run reconcile → exit ${rec.code}: ${rec.output.split('\n').slice(-12).join('\n    ')}`,
  );
  const failures = books.failures.map((f) => `books: ${f}`);
  if (rec.code !== 0) failures.push(`reconcile exited ${rec.code}`);
  return failures;
}

/**
 * Proves the final check is not vacuous: nudges one account's balance by 1e-10 behind the
 * ledger's back, requires both the books check and `reconcile-cli` (exit 1, naming the
 * account) to catch it, then puts the balance back.
 */
export async function negativeControl(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
): Promise<string[]> {
  const victim = fx.accounts[fx.accounts.length - 1].id;
  const problems: string[] = [];
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`UPDATE accounts SET balance = balance + 0.0000000001 WHERE id = $1`, [victim]);
    const books = await verifyBooks(url, fx, events);
    if (!books.failures.some((f) => f.includes(victim)))
      problems.push(`negative control: the books check missed a balance off by 1e-10 on ${victim}`);
    const rec = await runReconcile(url);
    if (rec.code !== 1 || !rec.output.includes(victim))
      problems.push(
        `negative control: reconcile exited ${rec.code} without naming ${victim}: ${rec.output.slice(0, 300)}`,
      );
    log(
      `negative control: balance of ${victim} nudged by 1e-10 → books check ${books.failures.length} failure(s), ` +
        `reconcile exit ${rec.code} (${rec.output.split('\n')[0]}); ${problems.length ? 'NOT CAUGHT' : 'caught'}; restored`,
    );
  } finally {
    await c.query(`UPDATE accounts SET balance = balance - 0.0000000001 WHERE id = $1`, [victim]);
    await c.end();
  }
  return problems;
}

// ---- output ---------------------------------------------------------------------------------------

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ');
  const sep = widths.map((w) => '-'.repeat(w)).join('-+-');
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}
