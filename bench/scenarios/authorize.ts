/**
 * Spend control under load: authorize with a hold (closed loop, then open loop at a fixed
 * rate) beside pgbench doing the same writes, and the gateway's real pattern for single
 * events: authorize (placing a hold), then the usage event for the same request id, whose
 * ingestion transaction settles the hold. Ends by checking every hold and every `held` sum
 * in the service's database against what the load generator saw confirmed.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import pg from 'pg';
import { CFG, log as benchLog, TARGETS } from '../lib/config.js';
import type { BenchDatabases } from '../lib/db.js';
import type { BenchAccounts } from '../lib/fixture.js';
import {
  authorizeScript,
  authorizeThenEventScript,
  prepareHoldsTables,
} from '../lib/holds-pgbench.js';
import type { Checker, HttpClient, HttpResponse, Job } from '../lib/load.js';
import type { PgbenchResult } from '../lib/pgbench.js';
import { fmtInt, fmtMs, roundedSummary, ScenarioReport, toReport } from '../lib/report.js';
import { type Measured, type ScenarioRunner, withTxns } from '../lib/runner.js';
import { round } from '../lib/stats.js';
import type { Traffic } from '../lib/traffic.js';

export const AUTHORIZE_PATH = '/v1/gateway/authorize';
const MODEL = 'gpt-image-2';

export interface HoldsBenchContext {
  client: HttpClient;
  /** Gateway headers for a body (content type, length, gateway key). */
  headers: (job: Job) => OutgoingHttpHeaders;
  /** The API key (sk-...) of each account's token, by account index. */
  keys: string[];
  /** Accounts the settle scenario spreads over (all of them, like single events). */
  accounts: number;
  /** Accounts authorize-only scenarios spread over (the first ones). */
  holdAccounts: number;
  runTag: string;
  seconds: number;
  warmupSeconds: number;
  /** Connections for authorize (and pgbench clients beside it). */
  authorizeConcurrency: number;
  /** Connections for authorize + event (as for single events). */
  eventConcurrency: number;
  openRate: number;
  /** pgbench clients for the authorize + event script (as for the single-event script). */
  eventPgbenchClients: number;
  /** A usage event body (the single-event scenarios' event) for an account and request id. */
  eventBody: (acct: number, requestId: string) => string;
  /** The single-event checker: 201 and its charge noted. */
  checkEvent: Checker;
  /** Charged events per account: the settle scenario adds its events for the balance check. */
  perAccount: Int32Array;
  closed: <J extends Job>(o: {
    next: () => J;
    concurrency: number;
    seconds: number;
    check: Checker;
    perAccount: Int32Array;
    send?: (job: J) => Promise<HttpResponse>;
  }) => Promise<Measured>;
  open: (o: {
    next: () => Job;
    rate: number;
    seconds: number;
    check: Checker;
    perAccount: Int32Array;
  }) => Promise<Measured & { maxSendLagMs: number }>;
  /** pgbench with a script; with `rate`, an open loop at that many transactions a second. */
  pgb: (o: {
    script: string;
    sql: string;
    clients: number;
    rate?: number;
  }) => Promise<PgbenchResult>;
  /** Records a scenario for the report (and logs it). */
  announce: (s: ScenarioReport) => void;
  withTxns: (s: ScenarioReport, txns: number) => ScenarioReport;
  log: (m: string) => void;
  pgbenchUrl: string;
  serviceUrl: string;
  /** Account ids by index, to check the holds per account. */
  accountIds: string[];
  /** pgbench's single-event figure (the "spread" script) run earlier, to compare against. */
  singlePgbench: PgbenchResult | null;
  /** The service's single-event figure measured earlier. */
  singleService: ScenarioReport | null;
  targets: { authorizeRatio: number; authorizeOpenP99Ms: number };
}

export interface HoldsCheck {
  /** Confirmed by the load generator: holds left active (authorize only) and settled. */
  expectedActive: number;
  expectedSettled: number;
  active: number;
  settled: number;
  otherClosed: number;
  /** Accounts whose active-hold count or `held` disagrees with what was confirmed. */
  accountsOff: number;
  /** Accounts and tokens whose `held` is not the sum of their active holds. */
  heldSumsOff: number;
  samples: string[];
  ok: boolean;
}

export interface HoldsOutcome {
  holdAmount: string;
  /** This module's scenarios, as announced. */
  scenarios: ScenarioReport[];
  /** pgbench's authorize + event run (also in the pgbench table). */
  settlePgbench: PgbenchResult;
  check: HoldsCheck;
}

/** Where the authorize answer says the hold was placed; else what went wrong. */
const authorizeProblem = (res: HttpResponse): string | null => {
  if (res.status !== 200) return `HTTP ${res.status}: ${res.body}`;
  if (!res.body.includes('"allowed":true') || !res.body.includes('"hold":{'))
    return `not held: ${res.body}`;
  return null;
};

const checkAuthorize: Checker = (_job, res) => {
  const why = authorizeProblem(res);
  return why ? { ok: [false], error: why } : { ok: [true] };
};

interface SettleJob extends Job {
  authorize: string;
}

/**
 * (6)–(8) on the bench's runner, after the single-event scenarios (whose figures they compare
 * against) and with their traffic's event bodies and counts; null with BENCH_SKIP_HOLDS=1.
 */
export async function spendControl(
  run: ScenarioRunner,
  t: Traffic,
  fixture: BenchAccounts,
  dbs: BenchDatabases,
): Promise<HoldsOutcome | null> {
  if (process.env.BENCH_SKIP_HOLDS === '1') return null;
  return holdsScenarios({
    client: run.client,
    headers: t.headers,
    keys: fixture.tokenKeys,
    accounts: CFG.accounts,
    holdAccounts: CFG.holdAccounts,
    runTag: t.runTag,
    seconds: CFG.seconds,
    warmupSeconds: CFG.warmupSeconds,
    authorizeConcurrency: CFG.authorizeConcurrency,
    eventConcurrency: CFG.concurrency,
    openRate: CFG.openRate,
    eventPgbenchClients: CFG.pgbenchClients,
    eventBody: t.eventWithId,
    checkEvent: t.checkSingle,
    perAccount: t.perAccount,
    closed: (o) =>
      run.closed(o.next, o.concurrency, o.seconds, o.check, {
        perAccount: o.perAccount,
        send: o.send,
      }),
    open: (o) => run.open(o.next, o.rate, o.seconds, o.check, o.perAccount),
    pgb: (o) => run.pgb(o.script, { sql: o.sql, clients: o.clients, rate: o.rate }),
    announce: (s) => run.announce(s),
    withTxns,
    log: benchLog,
    pgbenchUrl: dbs.pgbenchUrl,
    serviceUrl: dbs.serviceUrl,
    accountIds: fixture.accountIds,
    singlePgbench: run.pgbenchRuns.find((p) => p.script === 'spread' && p.rate === null) ?? null,
    singleService: run.scenarios.find((s) => s.id === 'single_spread') ?? null,
    targets: {
      authorizeRatio: TARGETS.authorizeRatio,
      authorizeOpenP99Ms: TARGETS.authorizeOpenP99Ms,
    },
  });
}

export async function holdsScenarios(ctx: HoldsBenchContext): Promise<HoldsOutcome> {
  const { client, log } = ctx;
  // Bodies: the key and model fixed per account, a fresh request id per request.
  const heads = ctx.keys.map((k) => `{"key":"${k}","model":"${MODEL}","requestId":"`);
  let seq = 0;
  const authorizeBody = (acct: number, requestId: string): string => `${heads[acct]}${requestId}"}`;
  let rr = 0;
  const nextAuthorize = (): Job => {
    const acct = rr++ % ctx.holdAccounts;
    return {
      path: AUTHORIZE_PATH,
      body: authorizeBody(acct, `h${ctx.runTag}-${seq++}`),
      accounts: [acct],
      keepBody: true, // the answer says whether it was allowed
    };
  };
  const holdsPerAccount = new Int32Array(ctx.accounts);
  const scenarios: ScenarioReport[] = [];
  const announce = (s: ScenarioReport): void => {
    scenarios.push(s);
    ctx.announce(s);
  };
  let settledOk = 0;

  // What one authorize holds, from the service itself (it goes into the pgbench scripts).
  const probe = nextAuthorize();
  const first = await client.request('POST', probe.path, ctx.headers(probe), probe.body);
  const firstProblem = authorizeProblem(first);
  if (firstProblem) throw new Error(`authorize does not hold: ${firstProblem}`);
  holdsPerAccount[probe.accounts[0]]++;
  const holdAmount = (JSON.parse(first.body) as { hold: { amount: string } }).hold.amount;
  log(`authorize holds ${holdAmount} per ${MODEL} request`);
  await prepareHoldsTables(ctx.pgbenchUrl, ctx.accounts);

  // (a) authorize with hold, closed loop
  log(
    `(6) authorize with hold over ${ctx.holdAccounts} accounts: closed loop, ${ctx.authorizeConcurrency} connections, ` +
      `${ctx.seconds} s (after ${ctx.warmupSeconds} s warm-up)`,
  );
  {
    const run = (seconds: number): Promise<Measured> =>
      ctx.closed({
        next: nextAuthorize,
        concurrency: ctx.authorizeConcurrency,
        seconds,
        check: checkAuthorize,
        perAccount: holdsPerAccount,
      });
    await run(ctx.warmupSeconds);
    const { r, cpu, txns } = await run(ctx.seconds);
    const p = await ctx.pgb({
      script: 'authorize',
      sql: authorizeScript(ctx.holdAccounts, holdAmount),
      clients: ctx.authorizeConcurrency,
    });
    const rep = toReport(
      'authorize_hold',
      `authorize with hold, ${ctx.holdAccounts} accounts`,
      r,
      cpu,
      p,
      `≥ ${ctx.targets.authorizeRatio} × pgbench authorize`,
      (_e, _l, ratio) => ratio !== null && ratio >= ctx.targets.authorizeRatio,
    );
    rep.extra = { holdAmount };
    announce(ctx.withTxns(rep, txns));
  }

  // (b) authorize with hold, open loop at a fixed rate
  log(
    `(7) open loop: ${ctx.openRate} authorizes/s for ${ctx.seconds} s, latency from the scheduled send time`,
  );
  {
    const { r, cpu, txns, maxSendLagMs } = await ctx.open({
      next: nextAuthorize,
      rate: ctx.openRate,
      seconds: ctx.seconds,
      check: checkAuthorize,
      perAccount: holdsPerAccount,
    });
    // pgbench's same writes at the same rate: its p99 is the floor for the service's.
    const p = await ctx.pgb({
      script: 'authorize',
      sql: authorizeScript(ctx.holdAccounts, holdAmount),
      clients: ctx.authorizeConcurrency,
      rate: ctx.openRate,
    });
    const rep = toReport(
      'authorize_open_loop',
      `open loop ${fmtInt(ctx.openRate)} authorizes/s`,
      r,
      cpu,
      p,
      `p99 < ${ctx.targets.authorizeOpenP99Ms} ms`,
      (_e, l) => l.p99 < ctx.targets.authorizeOpenP99Ms,
    );
    rep.extra = { maxSendLagMs: round(maxSendLagMs), holdAmount };
    announce(ctx.withTxns(rep, txns));
  }

  // (c) authorize, then the usage event settling its hold
  log(
    `(8) authorize + usage event for the same request id (the event settles the hold) over ${ctx.accounts} accounts: ` +
      `closed loop, ${ctx.eventConcurrency} connections, ${ctx.seconds} s (after ${ctx.warmupSeconds} s warm-up)`,
  );
  let settlePgbench: PgbenchResult;
  {
    let sampleNext = true;
    let rs = 0;
    const nextSettle = (): SettleJob => {
      const acct = rs++ % ctx.accounts;
      const requestId = `s${ctx.runTag}-${seq++}`;
      const keepBody = sampleNext;
      sampleNext = false;
      return {
        path: '/v1/usage-events',
        body: ctx.eventBody(acct, requestId),
        authorize: authorizeBody(acct, requestId),
        accounts: [acct],
        keepBody,
      };
    };
    let authLat: number[] = [];
    let eventLat: number[] = [];
    const send = async (job: SettleJob): Promise<HttpResponse> => {
      const t0 = performance.now();
      const a = await client.request(
        'POST',
        AUTHORIZE_PATH,
        ctx.headers({ ...job, body: job.authorize }),
        job.authorize,
      );
      const t1 = performance.now();
      authLat.push(t1 - t0);
      const why = authorizeProblem(a);
      if (why) return { status: 0, body: `authorize: ${why}` };
      holdsPerAccount[job.accounts[0]]++; // active until its event is confirmed
      const e = await client.request('POST', job.path, ctx.headers(job), job.body, job.keepBody);
      eventLat.push(performance.now() - t1);
      return e;
    };
    // The event check, counting the holds this run settles (a charged event settles its own).
    const check: Checker = (job, res) => {
      const out = ctx.checkEvent(job, res);
      if (out.ok[0]) {
        settledOk++;
        holdsPerAccount[job.accounts[0]]--;
      }
      return out;
    };
    const run = (seconds: number): Promise<Measured> =>
      ctx.closed({
        next: nextSettle,
        concurrency: ctx.eventConcurrency,
        seconds,
        check,
        perAccount: ctx.perAccount,
        send,
      });
    await run(ctx.warmupSeconds);
    authLat = [];
    eventLat = [];
    const { r, cpu, txns } = await run(ctx.seconds);
    settlePgbench = await ctx.pgb({
      script: 'authorize+event',
      sql: authorizeThenEventScript(ctx.accounts, holdAmount),
      clients: ctx.eventPgbenchClients,
    });
    const rep = toReport(
      'authorize_then_event',
      `authorize + event settling it, ${ctx.accounts} accounts (pgbench: spread)`,
      r,
      cpu,
      ctx.singlePgbench,
      '(vs pgbench single event)',
      () => true,
    );
    rep.informational = true;
    const own =
      settlePgbench.eventsPerSec > 0 ? rep.eventsPerSec / settlePgbench.eventsPerSec : null;
    const single = ctx.singleService?.eventsPerSec
      ? rep.eventsPerSec / ctx.singleService.eventsPerSec
      : null;
    rep.extra = {
      holdAmount,
      stepLatencyMs: { authorize: roundedSummary(authLat), event: roundedSummary(eventLat) },
      otherRatios: {
        'pgbench authorize+event': own === null ? null : round(own, 2),
        'service single events': single === null ? null : round(single, 2),
      },
    };
    announce(ctx.withTxns(rep, txns));
    const steps = rep.extra.stepLatencyMs ?? {};
    log(
      `  per call: authorize p50 ${fmtMs(steps.authorize?.p50)} / p99 ${fmtMs(steps.authorize?.p99)} ms, ` +
        `event p50 ${fmtMs(steps.event?.p50)} / p99 ${fmtMs(steps.event?.p99)} ms; ` +
        `${(own ?? NaN).toFixed(2)} × pgbench authorize+event, ${(single ?? NaN).toFixed(2)} × the service's single events`,
    );
  }

  const check = await checkHolds(ctx, holdsPerAccount, settledOk, holdAmount);
  log(
    `holds: ${fmtInt(check.active)} active (expected ${fmtInt(check.expectedActive)}), ${fmtInt(check.settled)} settled ` +
      `(expected ${fmtInt(check.expectedSettled)}), ${check.otherClosed} otherwise closed; ` +
      `${check.accountsOff} accounts off what was confirmed, ${check.heldSumsOff} held sums off their holds` +
      (check.samples.length ? `; e.g. ${check.samples[0]}` : ''),
  );
  return { holdAmount, scenarios, settlePgbench, check };
}

/**
 * In the service's database: every hold the load generator saw placed and not settled is
 * active, every one it saw settled is settled, each account's held is its confirmed active
 * holds × the hold amount, and every account's and token's held is the sum of its active holds.
 */
async function checkHolds(
  ctx: HoldsBenchContext,
  holdsPerAccount: Int32Array,
  settledOk: number,
  holdAmount: string,
): Promise<HoldsCheck> {
  const c = new pg.Client({ connectionString: ctx.serviceUrl });
  await c.connect();
  try {
    const tally = (
      await c.query<{ active: string; settled: string; other: string; off: string }>(
        `SELECT count(*) FILTER (WHERE status = 'active') AS active,
                count(*) FILTER (WHERE status = 'settled') AS settled,
                count(*) FILTER (WHERE status NOT IN ('active', 'settled')) AS other,
                (SELECT count(*) FROM accounts a WHERE a.held <> COALESCE(
                   (SELECT sum(amount) FROM holds h WHERE h.account_id = a.id AND h.status = 'active'), 0))
              + (SELECT count(*) FROM api_tokens t WHERE t.held <> COALESCE(
                   (SELECT sum(amount) FROM holds h WHERE h.token_id = t.id AND h.status = 'active'), 0)) AS off
         FROM holds`,
      )
    ).rows[0];
    const perAccount = await c.query<{ id: string; held: string; n: string; ok: boolean }>(
      `SELECT a.id, a.held::text AS held, count(h.request_id)::text AS n,
              a.held = count(h.request_id) * $1::numeric AS ok
       FROM accounts a LEFT JOIN holds h ON h.account_id = a.id AND h.status = 'active'
       WHERE a.id = ANY($2::uuid[]) GROUP BY a.id`,
      [holdAmount, ctx.accountIds],
    );
    const byId = new Map(perAccount.rows.map((r) => [r.id, r]));
    const samples: string[] = [];
    let accountsOff = 0;
    ctx.accountIds.forEach((id, i) => {
      const row = byId.get(id);
      const n = row ? Number(row.n) : 0;
      if (!row || n !== holdsPerAccount[i] || !row.ok) {
        accountsOff++;
        if (samples.length < 5)
          samples.push(
            `account #${i}: ${n} active holds, held ${row?.held ?? '?'}, confirmed ${holdsPerAccount[i]} × ${holdAmount}`,
          );
      }
    });
    const expectedActive = holdsPerAccount.reduce((a, b) => a + b, 0);
    const active = Number(tally.active);
    const settled = Number(tally.settled);
    const heldSumsOff = Number(tally.off);
    return {
      expectedActive,
      expectedSettled: settledOk,
      active,
      settled,
      otherClosed: Number(tally.other),
      accountsOff,
      heldSumsOff,
      samples,
      ok:
        active === expectedActive &&
        settled === settledOk &&
        Number(tally.other) === 0 &&
        accountsOff === 0 &&
        heldSumsOff === 0,
    };
  } finally {
    await c.end().catch(() => undefined);
  }
}
