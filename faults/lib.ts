/**
 * Shared pieces of the fault suite (npm run test:crash, test:instances, soak): a harness with
 * cleanup on every exit path, a service "slot" that can be SIGKILLed and restarted, the
 * account set-up through the API, an event planner that prices every event independently of
 * the service (from the contract's seeded prices and group ratios, exact in decimal) with the
 * hold each request's authorize must get, a gateway simulator that authorizes, delivers and
 * releases, resending until it gets a definitive answer, and the books check by direct SQL
 * (ledger, balances, spend and holds) followed by `reconcile-cli`.
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
export const RECONCILE_JS = join(ROOT, 'dist', 'src', 'statements', 'reconcile-cli.js');
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

// ---- holds, planned from the contract -----------------------------------------------------------

/** gpt-image-2's reference prices per image (USD) by size and quality, from the contract. */
const REFERENCE_PRICE: Record<string, Record<string, Dec>> = {
  '1024x1024': { low: new Dec('0.006'), medium: new Dec('0.053'), high: new Dec('0.211') },
  '1024x1536': { low: new Dec('0.005'), medium: new Dec('0.041'), high: new Dec('0.165') },
  '1536x1024': { low: new Dec('0.005'), medium: new Dec('0.041'), high: new Dec('0.165') },
};
/** gpt-image-2's seeded holdAmount: per image, when a request names no priced size/quality. */
const SEEDED_HOLD_AMOUNT = new Dec('0.25');

export interface PlannedHold {
  requestId: string;
  token: number;
  account: number;
  /** The authorize body (with the token's key), sent verbatim on every attempt. */
  json: string;
  /** The request as failures name it (model, n, size/quality), without the key. */
  what: string;
  /** Likely price × group ratio, rounded up at scale 10: what authorize must hold. */
  amount: Dec;
  /** Abandoned work: the gateway releases the hold and never sends a usage event. */
  abandoned: boolean;
}

interface AuthorizeBody {
  key: string;
  model: string;
  requestId: string;
  n?: number;
  size?: string;
  quality?: string;
}

/**
 * The authorize the gateway sends before the event's request, with n, size and quality that
 * fit the event (gpt-image-2 names its size and quality four times in five, else it is held
 * at the seeded holdAmount; gpt-image-2-vip asks for the images it got, at least one), and
 * the hold it must get: per_request 0.03, per_image 0.03 × n, tokens the reference price
 * (or holdAmount) × n, times the group ratio.
 */
export function planHold(r: Rng, e: PlannedEvent, fx: Fixture, abandoned: boolean): PlannedHold {
  const ev = JSON.parse(e.json) as EventBody;
  const tok = fx.tokens[e.token];
  const b: AuthorizeBody = { key: tok.key, model: ev.model, requestId: e.requestId };
  let price: Dec;
  if (ev.model === 'gpt-image-2') {
    b.n = r.chance(0.8) ? 1 : 2;
    if (ev.size && ev.quality && r.chance(0.8)) {
      b.size = ev.size;
      b.quality = ev.quality;
    }
    const ref = b.size && b.quality ? REFERENCE_PRICE[b.size]?.[b.quality] : undefined;
    price = (ref ?? SEEDED_HOLD_AMOUNT).times(b.n);
  } else if (ev.model === 'gpt-image-2-vip') {
    b.n = Math.max(1, ev.images ?? 1);
    price = PRICE.perImage.times(b.n);
  } else {
    if (r.chance(0.5)) b.n = 1;
    price = PRICE.perRequest;
  }
  return {
    requestId: e.requestId,
    token: e.token,
    account: e.account,
    json: JSON.stringify(b),
    what: `${b.model} n=${b.n ?? '-'} ${b.size ?? '-'}/${b.quality ?? '-'}`,
    amount: price.times(tok.ratio).toDecimalPlaces(10, Decimal.ROUND_UP),
    abandoned,
  };
}

/** A hold planned for every request; those in `abandoned` are released, never delivered. */
export function planHolds(
  r: Rng,
  planned: readonly PlannedEvent[],
  fx: Fixture,
  abandoned: ReadonlySet<string>,
): Map<string, PlannedHold> {
  return new Map(planned.map((e) => [e.requestId, planHold(r, e, fx, abandoned.has(e.requestId))]));
}

/**
 * Accounts whose opening credit covers every charge and every hold planned on them at once:
 * there balance − held − hold stays ≥ 0 in any order, so authorize may never refuse them.
 */
export function accountsNeverShort(
  fx: Fixture,
  events: readonly PlannedEvent[],
  holds: Iterable<PlannedHold>,
): Set<number> {
  const need = fx.accounts.map(() => ZERO);
  for (const e of events) need[e.account] = need[e.account].plus(e.charge);
  for (const h of holds) need[h.account] = need[h.account].plus(h.amount);
  return new Set(fx.accounts.flatMap((a, i) => (a.credit.gte(need[i]) ? [i] : [])));
}

// ---- the gateway simulator ----------------------------------------------------------------------

/** How a resender's attempts went (usage deliveries, authorizes, releases). */
export interface RetryStats {
  attempts: number;
  retries: number;
  networkErrors: number;
  down: number;
  http5xx: number;
  http409: number;
}

const noRetries = (): RetryStats => ({
  attempts: 0,
  retries: 0,
  networkErrors: 0,
  down: 0,
  http5xx: 0,
  http409: 0,
});

export interface GatewayStats extends RetryStats {
  deliveries: number;
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

interface RetryOptions {
  giveUpMs: number;
  max409: number;
}

/** A definitive answer, and whether an earlier attempt of the same call failed. */
interface Definitive {
  res: HttpResponse;
  failedBefore: boolean;
}

/**
 * The gateway's resend policy: POST until a definitive answer, a 2xx or a 4xx other than 409.
 * Connection errors, timeouts, a down service, 5xx and 409 are retried after a short backoff.
 */
abstract class Resender<S extends RetryStats> {
  readonly failures: string[] = [];
  readonly samples: string[] = [];
  private readonly auth: string;

  protected constructor(
    gatewayKey: string,
    readonly stats: S,
    private readonly retry: RetryOptions,
  ) {
    this.auth = `Bearer ${gatewayKey}`;
  }

  protected fail(m: string): void {
    if (this.failures.length < 50) this.failures.push(m);
    else if (this.failures.length === 50) this.failures.push('… more failures not shown');
  }

  protected sample(m: string): void {
    if (this.samples.length < 10) this.samples.push(m.slice(0, 300));
  }

  /** null when it gave up (a failure is recorded); `label` names the call in messages. */
  protected async post(
    target: Target,
    path: string,
    body: string | undefined,
    label: string,
  ): Promise<Definitive | null> {
    const headers: OutgoingHttpHeaders =
      body === undefined
        ? { authorization: this.auth }
        : {
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
      if (Date.now() - started > this.retry.giveUpMs) {
        this.fail(`${target.name}: gave up on ${label}… after ${this.retry.giveUpMs} ms`);
        return null;
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
        this.sample(`HTTP 409 (${target.name}) for ${label}: ${res.body}`);
        if (++conflicts >= this.retry.max409) {
          this.fail(`${label}: 409 ${conflicts} times: ${res.body.slice(0, 200)}`);
          return null;
        }
        failedBefore = true;
        continue;
      }
      return { res, failedBefore };
    }
  }
}

/**
 * Sends each delivery of usage events until it gets a definitive answer (see Resender), as
 * the gateway does. Every answer is checked against the planned outcome and charge.
 */
export class Gateway extends Resender<GatewayStats> {
  /** Per request id: answers that recorded it anew (must never exceed 1). */
  readonly newAnswers = new Map<string, number>();
  /** Per target: events it recorded anew (answered charged/skipped, not duplicate). */
  readonly newByTarget = new Map<string, number>();

  constructor(gatewayKey: string, o: RetryOptions = { giveUpMs: 180_000, max409: 20 }) {
    super(
      gatewayKey,
      { deliveries: 0, ...noRetries(), duplicateAnswers: 0, recoveredAfterFailure: 0 },
      o,
    );
  }

  /** One delivery of `events` (a batch when asked, else exactly one event) to `target`. */
  async deliver(target: Target, events: PlannedEvent[], asBatch: boolean): Promise<void> {
    if (!asBatch && events.length !== 1) throw new Error('a single delivery has one event');
    this.stats.deliveries++;
    const path = asBatch ? '/v1/usage-events/batch' : '/v1/usage-events';
    const body = asBatch ? `{"events":[${events.map((e) => e.json).join(',')}]}` : events[0].json;
    const answer = await this.post(target, path, body, events[0].requestId);
    if (!answer) return;
    const { res, failedBefore } = answer;
    if (res.status < 200 || res.status >= 300) {
      this.fail(`${target.name} ${path} → ${res.status}: ${res.body.slice(0, 300)}`);
      return;
    }
    if (asBatch) this.checkBatch(target, events, res, failedBefore);
    else this.checkSingle(target, events[0], res, failedBefore);
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

// ---- the gateway's authorizes and releases --------------------------------------------------------

export interface HoldStats extends RetryStats {
  authorizes: number;
  /** allowed: true, with the planned hold (placed now, or the same one again). */
  allowed: number;
  /** Of those, answered after an attempt of the same call failed (its answer lost). */
  allowedAfterFailure: number;
  insufficientBalance: number;
  requestSettled: number;
  /** request_settled on the call's first attempt, before anything could have closed it. */
  requestSettledFirstTry: number;
  releases: number;
  /** 200 { status: "released" }. */
  released: number;
  /** 404: nothing was held (its authorize had been refused). */
  releaseUnknown: number;
}

export interface AuthorizeAnswer {
  allowed: boolean;
  reason?: string;
  tokenId?: string;
  accountId?: string;
  group?: string;
  ratio?: string;
  balance?: string;
  available?: string;
  hold?: { requestId: string; amount: string; expiresAt: string } | null;
}

/** What the books check needs to know of the holds: the plan and what authorize answered. */
export interface HoldPlan {
  holds: readonly PlannedHold[];
  /** Request ids some authorize answered allowed: each must have a holds row. */
  allowed: ReadonlySet<string>;
  /** Request ids that may hold money though no answer showed a hold: see HoldGateway. */
  uncertain: ReadonlySet<string>;
}

const refused = (a: AuthorizeAnswer | null): boolean =>
  a !== null && !a.allowed && a.reason === 'insufficient_balance';

/**
 * The gateway's `authorize` before each request and `release` of abandoned work, each resent
 * until definitive (see Resender). An allowed answer must carry the planned hold on the right
 * token, account, group and ratio, the same hold on every answer for a request id; a refusal
 * may only be insufficient_balance (never on an account whose credit covers everything
 * planned on it) or request_settled.
 */
export class HoldGateway extends Resender<HoldStats> {
  /** Request ids some authorize answered allowed: true. */
  readonly allowed = new Set<string>();
  /**
   * Request ids whose hold may exist without an allowed answer: an attempt's answer was lost
   * before a refusal, or the answer was request_settled.
   */
  readonly uncertain = new Set<string>();
  /** The expiry of the hold each allowed answer showed: one hold per request id. */
  private readonly expiresAt = new Map<string, string>();

  constructor(
    gatewayKey: string,
    private readonly fx: Fixture,
    private readonly neverShort: ReadonlySet<number>,
    o: RetryOptions = { giveUpMs: 180_000, max409: 20 },
  ) {
    super(
      gatewayKey,
      {
        authorizes: 0,
        ...noRetries(),
        allowed: 0,
        allowedAfterFailure: 0,
        insufficientBalance: 0,
        requestSettled: 0,
        requestSettledFirstTry: 0,
        releases: 0,
        released: 0,
        releaseUnknown: 0,
      },
      o,
    );
  }

  plan(holds: readonly PlannedHold[]): HoldPlan {
    return { holds, allowed: this.allowed, uncertain: this.uncertain };
  }

  /** Authorizes `h` on `target`; the checked answer, or null when there was none. */
  async authorize(target: Target, h: PlannedHold): Promise<AuthorizeAnswer | null> {
    this.stats.authorizes++;
    const answer = await this.post(target, '/v1/gateway/authorize', h.json, h.requestId);
    if (!answer) {
      this.uncertain.add(h.requestId);
      return null;
    }
    const { res, failedBefore } = answer;
    let a: AuthorizeAnswer;
    try {
      if (res.status !== 200) throw new Error('not 200');
      a = JSON.parse(res.body) as AuthorizeAnswer;
    } catch {
      this.fail(
        `authorize@${target.name} ${h.requestId} → ${res.status}: ${res.body.slice(0, 200)}`,
      );
      this.uncertain.add(h.requestId);
      return null;
    }
    if (a.allowed) this.checkAllowed(target, h, a, failedBefore);
    else this.checkRefused(target, h, a, failedBefore);
    return a;
  }

  private checkAllowed(
    target: Target,
    h: PlannedHold,
    a: AuthorizeAnswer,
    failedBefore: boolean,
  ): void {
    const where = `authorize@${target.name} ${h.requestId} (${h.what})`;
    const tok = this.fx.tokens[h.token];
    this.stats.allowed++;
    if (failedBefore) this.stats.allowedAfterFailure++;
    this.allowed.add(h.requestId);
    if (a.tokenId !== tok.id || a.accountId !== this.fx.accounts[h.account].id)
      this.fail(`${where}: answered token ${a.tokenId} / account ${a.accountId}`);
    if (a.group !== tok.group || a.ratio === undefined || !new Dec(a.ratio).eq(tok.ratio))
      this.fail(`${where}: group ${a.group} ratio ${a.ratio}, expected ${tok.group}`);
    const hold = a.hold;
    if (!hold || hold.requestId !== h.requestId) {
      this.fail(`${where}: allowed with hold ${JSON.stringify(hold)}`);
      return;
    }
    if (!new Dec(hold.amount).eq(h.amount))
      this.fail(`${where}: holds ${hold.amount}, expected ${h.amount.toFixed()}`);
    const first = this.expiresAt.get(h.requestId);
    if (first !== undefined && first !== hold.expiresAt)
      this.fail(`${where}: a second hold, expiring ${hold.expiresAt} (the first ${first})`);
    this.expiresAt.set(h.requestId, hold.expiresAt);
    // available = balance − held, and held includes this hold.
    if (
      a.balance === undefined ||
      a.available === undefined ||
      new Dec(a.available).gt(new Dec(a.balance).minus(hold.amount))
    )
      this.fail(`${where}: available ${a.available} > balance ${a.balance} − ${hold.amount}`);
  }

  private checkRefused(
    target: Target,
    h: PlannedHold,
    a: AuthorizeAnswer,
    failedBefore: boolean,
  ): void {
    const where = `authorize@${target.name} ${h.requestId} (${h.what})`;
    if (failedBefore || a.reason === 'request_settled') this.uncertain.add(h.requestId);
    if (a.reason === 'insufficient_balance') {
      this.stats.insufficientBalance++;
      if (this.neverShort.has(h.account))
        this.fail(
          `${where}: insufficient_balance on account #${h.account}, whose credit covers every charge and hold planned on it`,
        );
    } else if (a.reason === 'request_settled') {
      this.stats.requestSettled++;
      if (!failedBefore) this.stats.requestSettledFirstTry++;
    } else {
      this.fail(`${where}: refused with ${a.reason}`);
    }
  }

  /**
   * Releases an abandoned request's hold: 200 "released" (idempotent), or 404 only when its
   * own authorize (`answer`) was refused for insufficient balance and so may hold nothing.
   */
  async release(target: Target, h: PlannedHold, answer: AuthorizeAnswer | null): Promise<void> {
    this.stats.releases++;
    const path = `/v1/gateway/holds/${encodeURIComponent(h.requestId)}/release`;
    const got = await this.post(target, path, undefined, `release ${h.requestId}`);
    if (!got) return;
    const { res } = got;
    const where = `release@${target.name} ${h.requestId}`;
    if (res.status === 404 && refused(answer)) {
      this.stats.releaseUnknown++;
      return;
    }
    let status: string | undefined;
    try {
      status = (JSON.parse(res.body) as { status?: string }).status;
    } catch {
      status = undefined;
    }
    if (res.status !== 200 || status !== 'released')
      this.fail(
        `${where} → ${res.status}: ${res.body.slice(0, 200)} (authorize: ${JSON.stringify(answer)})`,
      );
    else this.stats.released++;
  }
}

/** The figures of a run's authorizes and releases, for its log and summary. */
export function holdFigures(s: HoldStats): string {
  return (
    `${s.authorizes} authorizes: ${s.allowed} allowed (${s.allowedAfterFailure} after a lost answer), ` +
    `${s.insufficientBalance} insufficient_balance, ${s.requestSettled} request_settled (${s.requestSettledFirstTry} on a first try); ` +
    `${s.releases} releases: ${s.released} released, ${s.releaseUnknown} 404 (nothing held); ` +
    `${s.retries} retries (${s.networkErrors} connection errors, ${s.down} while down, ${s.http5xx} HTTP 5xx)`
  );
}

/** One piece of the gateway's work on one instance. */
export interface GatewayJob {
  /** Authorized first, each of them; the abandoned ones are released at the end. */
  holds: PlannedHold[];
  /** Delivered after the authorizes (none for abandoned work). */
  events: PlannedEvent[];
  batch: boolean;
}

/**
 * What the gateway does for `job` on `target`: authorize every request (8 at a time), then
 * deliver the usage events (a batch when asked), then release the abandoned requests.
 */
export async function authorizeAndDeliver(
  target: Target,
  gw: Gateway,
  hg: HoldGateway,
  job: GatewayJob,
): Promise<void> {
  const answers = await mapLimit(job.holds, 8, (h) => hg.authorize(target, h));
  if (job.events.length > 0) await gw.deliver(target, job.events, job.batch);
  for (const [i, h] of job.holds.entries())
    if (h.abandoned) await hg.release(target, h, answers[i]);
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
 * booked once, the daily roll-ups agreeing; per token, spent = Σ its charges. Then the holds
 * (verifyHolds): held sums, closed holds, and each row against `plan` when given.
 */
export async function verifyBooks(
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan?: HoldPlan,
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

    const holdLines = await verifyHolds(q, fail, fx, plan);

    const total = expectCharge.reduce((x, y) => x.plus(y), ZERO);
    return {
      failures,
      lines: [
        `usage_events: ${rows.length} rows for ${planned.size} request ids sent (${lost} lost, ${rows.length - seen.size} extra)`,
        `ledger: ${entries.length} usage entries for ${chargedEvents} charged events; ${events.length - chargedEvents} skipped`,
        `balances: ${checkedAccounts} accounts = opening credit − Σ charges = Σ ledger (total charged ${total.toFixed()} USD; ${negative} account(s) below zero)`,
        `roll-ups and token spend checked for every account and token`,
        ...holdLines,
      ],
    };
  } finally {
    await pool.end();
  }
}

// ---- the holds, by direct SQL --------------------------------------------------------------------

type Query = <T extends object>(sql: string) => Promise<T[]>;
type Fail = (m: string) => void;

/** accounts.held and api_tokens.held each = Σ amount of the holds with status 'active'. */
async function checkHeldSums(q: Query, fail: Fail): Promise<string> {
  const sums = await q<{ kind: string; id: string; held: string; active: string }>(
    `SELECT 'account' AS kind, a.id::text, a.held::text,
            (SELECT COALESCE(SUM(amount), 0)::text FROM holds h WHERE h.account_id = a.id AND h.status = 'active') AS active
       FROM accounts a
     UNION ALL
     SELECT 'token', t.id::text, t.held::text,
            (SELECT COALESCE(SUM(amount), 0)::text FROM holds h WHERE h.token_id = t.id AND h.status = 'active')
       FROM api_tokens t`,
  );
  let heldNow = ZERO;
  for (const s of sums) {
    if (!new Dec(s.held).eq(new Dec(s.active)))
      fail(`${s.kind} ${s.id}: held ${s.held} ≠ Σ active holds ${s.active}`);
    if (s.kind === 'account') heldNow = heldNow.plus(s.held);
  }
  const accounts = sums.filter((s) => s.kind === 'account').length;
  return `held: ${accounts} accounts and ${sums.length - accounts} tokens = Σ their active holds (${heldNow.toFixed()} USD held now)`;
}

/** No charged request still holds money; no released (abandoned) request has a usage event. */
async function checkClosedHolds(q: Query, fail: Fail): Promise<string> {
  const bad = await q<{ request_id: string; status: string; outcome: string }>(
    `SELECT h.request_id, h.status, u.outcome FROM holds h JOIN usage_events u ON u.request_id = h.request_id
      WHERE (h.status = 'active' AND u.outcome = 'charged' AND u.token_id = h.token_id)
         OR h.status = 'released'`,
  );
  for (const b of bad)
    fail(
      b.status === 'active'
        ? `${b.request_id}: charged, yet its hold is still active`
        : `${b.request_id}: released as abandoned, yet it has a usage event (${b.outcome})`,
    );
  const stillHeld = bad.filter((b) => b.status === 'active').length;
  return `closed holds: ${stillHeld} charged requests still holding money, ${bad.length - stillHeld} released requests with a usage event (both must be 0)`;
}

/** Counts of holds rows by status, e.g. "settled 580, released 12". */
async function countHolds(q: Query): Promise<string> {
  const rows = await q<{ status: string; n: string }>(
    `SELECT status, COUNT(*)::text AS n FROM holds GROUP BY status ORDER BY status`,
  );
  const total = rows.reduce((n, r) => n + Number(r.n), 0);
  return `holds: ${total} rows (${rows.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'})`;
}

/**
 * Each holds row against the plan: a request the gateway authorized, on its token and
 * account, with the planned amount, settled by its usage event or released when abandoned.
 * A hold for every allowed answer; none where every answer refused and none was lost.
 */
async function checkPlannedHolds(
  q: Query,
  fail: Fail,
  fx: Fixture,
  plan: HoldPlan,
): Promise<string> {
  const rows = await q<{
    request_id: string;
    account_id: string;
    token_id: string;
    amount: string;
    status: string;
  }>(`SELECT request_id, account_id::text, token_id::text, amount::text, status FROM holds`);
  const planned = new Map(plan.holds.map((h) => [h.requestId, h]));
  const stored = new Set<string>();
  for (const r of rows) {
    const h = planned.get(r.request_id);
    if (!h) {
      fail(`holds has ${r.request_id}, which was never planned`);
      continue;
    }
    stored.add(r.request_id);
    if (r.account_id !== fx.accounts[h.account].id || r.token_id !== fx.tokens[h.token].id)
      fail(`hold ${r.request_id}: on account ${r.account_id} / token ${r.token_id}`);
    if (!new Dec(r.amount).eq(h.amount))
      fail(`hold ${r.request_id} (${h.what}): amount ${r.amount}, expected ${h.amount.toFixed()}`);
    const want = h.abandoned ? 'released' : 'settled';
    if (r.status !== want) fail(`hold ${r.request_id}: ${r.status}, expected ${want}`);
  }
  let missing = 0;
  for (const h of plan.holds) {
    if (plan.allowed.has(h.requestId) && !stored.has(h.requestId)) {
      missing++;
      fail(`authorize allowed ${h.requestId}, but there is no holds row`);
    } else if (
      !plan.allowed.has(h.requestId) &&
      !plan.uncertain.has(h.requestId) &&
      stored.has(h.requestId)
    )
      fail(`hold ${h.requestId} exists, though no authorize was allowed`);
  }
  const abandoned = plan.holds.filter((h) => h.abandoned).length;
  return `planned holds: ${plan.allowed.size} allowed of ${plan.holds.length} planned (${abandoned} abandoned), ${stored.size} stored, ${missing} missing`;
}

/** Every hold check; the plan-based one only when a plan is given. */
async function verifyHolds(
  q: Query,
  fail: Fail,
  fx: Fixture,
  plan: HoldPlan | undefined,
): Promise<string[]> {
  const lines = [
    await countHolds(q),
    await checkHeldSums(q, fail),
    await checkClosedHolds(q, fail),
  ];
  if (plan) lines.push(await checkPlannedHolds(q, fail, fx, plan));
  return lines;
}

/** Runs `node dist/src/statements/reconcile-cli.js` on the database, as `npm run reconcile` does. */
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
  plan?: HoldPlan,
): Promise<string[]> {
  const books = await verifyBooks(url, fx, events, plan);
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
 * Proves the final checks are not vacuous: one account's balance nudged behind the ledger's
 * back, then another's held behind its holds' back (see nudgeControl).
 */
export async function negativeControl(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan?: HoldPlan,
): Promise<string[]> {
  const last = fx.accounts[fx.accounts.length - 1].id;
  return [
    ...(await nudgeControl(log, url, fx, events, plan, 'balance', last)),
    ...(await nudgeControl(log, url, fx, events, plan, 'held', fx.accounts[0].id)),
  ];
}

/**
 * Nudges `column` of account `victim` by 1e-10, requires both the books check and
 * `reconcile-cli` (exit 1, naming the account) to catch it, then puts the value back.
 */
async function nudgeControl(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan: HoldPlan | undefined,
  column: 'balance' | 'held',
  victim: string,
): Promise<string[]> {
  const problems: string[] = [];
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`UPDATE accounts SET ${column} = ${column} + 0.0000000001 WHERE id = $1`, [
      victim,
    ]);
    const books = await verifyBooks(url, fx, events, plan);
    if (!books.failures.some((f) => f.includes(victim) && f.includes(column)))
      problems.push(
        `negative control: the books check missed a ${column} off by 1e-10 on ${victim}`,
      );
    const rec = await runReconcile(url);
    if (rec.code !== 1 || !rec.output.includes(victim))
      problems.push(
        `negative control: reconcile exited ${rec.code} without naming ${victim}: ${rec.output.slice(0, 300)}`,
      );
    log(
      `negative control: ${column} of ${victim} nudged by 1e-10 → books check ${books.failures.length} failure(s), ` +
        `reconcile exit ${rec.code} (${rec.output.split('\n')[0]}); ${problems.length ? 'NOT CAUGHT' : 'caught'}; restored`,
    );
  } finally {
    await c.query(`UPDATE accounts SET ${column} = ${column} - 0.0000000001 WHERE id = $1`, [
      victim,
    ]);
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
