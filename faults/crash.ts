/**
 * `npm run test:crash`: the service is SIGKILLed mid-ingestion several times and restarted on
 * the same database while a gateway simulator resends every event until it gets an answer.
 * Afterwards every event must be recorded exactly once, every charged event booked once, and
 * every balance = opening credit − Σ charges = Σ ledger (direct SQL, then `reconcile-cli`).
 * A final replay of the whole stream must answer "duplicate" for every event and move nothing.
 *
 * Holds: the gateway authorizes (with the event's request id, n, size and quality) before
 * almost every request, resending like it resends events, and a few single requests are
 * abandoned: authorized, then released, never delivered. A retried authorize answers the same
 * hold, or request_settled; an underfunded account may be refused (insufficient_balance).
 * The books check then also requires held = Σ active holds on every account and token, every
 * stored hold as planned (settled by its event, or released), no charged request holding
 * money; after the replay, authorizing any finished request again answers request_settled.
 *
 * Env: DATABASE_URL (a server to create a throw-away database on; unset: embedded PostgreSQL),
 * CRASH_EVENTS (3000), CRASH_ACCOUNTS (20), CRASH_CONCURRENCY (32), CRASH_KILLS (3..5 at
 * random), CRASH_SEED (printed; set it to replay the same stream and kill points).
 */
import { prepareDatabases } from '../bench/lib/db.js';
import { mapLimit, sleep } from '../bench/lib/stats.js';
import {
  accountsNeverShort,
  authorizeAndDeliver,
  checkBooks,
  negativeControl,
  envInt,
  Gateway,
  holdFigures,
  HoldGateway,
  newKeys,
  planEvent,
  planHolds,
  rng,
  runMain,
  seedFrom,
  ServiceSlot,
  setupAccounts,
  type GatewayJob,
  type PlannedEvent,
  type PlannedHold,
} from './lib/index.js';

interface Kill {
  atPct: number;
  inFlight: number;
  downMs: number;
}

runMain('crash', 900, async (h) => {
  const { log } = h;
  const seed = seedFrom('CRASH_SEED');
  const r = rng(seed);
  const CFG = {
    events: envInt('CRASH_EVENTS', 3000),
    accounts: envInt('CRASH_ACCOUNTS', 20),
    concurrency: envInt('CRASH_CONCURRENCY', 32),
    kills: envInt('CRASH_KILLS', r.int(3, 5)),
    batchSize: 50,
    batchShare: 1 / 3,
    /** Requests authorized before their usage event (the rest go without a hold). */
    authorizeShare: 0.95,
    /** Single requests abandoned: authorized, then released instead of delivered. */
    abandonShare: 0.04,
  };
  log(`seed ${seed} (CRASH_SEED=${seed} replays this stream): ${JSON.stringify(CFG)}`);
  const t0 = performance.now();

  const dbs = await prepareDatabases(log);
  h.onCleanup(() => dbs.cleanup());
  log(`PostgreSQL ${dbs.serverVersion} (${dbs.source})`);
  const keys = newKeys();
  const slot = new ServiceSlot('service', {
    databaseUrl: dbs.serviceUrl,
    ...keys,
    logDir: h.outDir,
    maxSockets: CFG.concurrency + 4,
  });
  h.onCleanup(() => slot.stop());
  const first = await slot.start();
  log(`service pid ${first.pid} on 127.0.0.1:${first.port} (logs in ${h.outDir})`);

  // Accounts: two start with little credit so usage takes them below zero (still booked).
  const setupClient = slot.client();
  if (!setupClient) throw new Error('no client');
  const fx = await setupAccounts({
    clients: [setupClient],
    adminKey: keys.adminKey,
    accounts: CFG.accounts,
    tokensPerAccount: 2,
    credit: (i) => (i < 2 ? '0.50' : '250.00'),
    tag: 'crash',
  });
  log(
    `set-up: ${fx.accounts.length} accounts credited by adjustment, ${fx.tokens.length} tokens (default and image2Enterprise)`,
  );

  // The stream: a third of the events in batches of 50, the rest single, in random order;
  // each request authorized first (almost all), a few single ones abandoned.
  const runTag = `c${seed.toString(36)}${Date.now().toString(36)}`;
  const planned = Array.from({ length: CFG.events }, (_, i) =>
    planEvent(r, `${runTag}-${i}`, fx, r.int(0, fx.tokens.length - 1)),
  );
  const inBatches = Math.floor((CFG.events * CFG.batchShare) / CFG.batchSize) * CFG.batchSize;
  const abandoned = new Set(
    planned
      .slice(inBatches)
      .filter(() => r.chance(CFG.abandonShare))
      .map((e) => e.requestId),
  );
  const holdOf = planHolds(r, planned, fx, abandoned);
  const holds = [...holdOf.values()];
  const events = planned.filter((e) => !abandoned.has(e.requestId));
  const authorizedFirst = (evs: PlannedEvent[]): PlannedHold[] =>
    evs.flatMap((e) => {
      const h = holdOf.get(e.requestId);
      return h && (h.abandoned || r.chance(CFG.authorizeShare)) ? [h] : [];
    });
  const jobs: GatewayJob[] = [];
  for (let i = 0; i < inBatches; i += CFG.batchSize) {
    const batch = planned.slice(i, i + CFG.batchSize);
    jobs.push({ holds: authorizedFirst(batch), events: batch, batch: true });
  }
  for (const e of planned.slice(inBatches)) {
    const work = abandoned.has(e.requestId) ? [] : [e];
    jobs.push({ holds: authorizedFirst([e]), events: work, batch: false });
  }
  r.shuffle(jobs);
  const charged = events.filter((e) => e.outcome === 'charged').length;
  const authorizes = jobs.reduce((n, j) => n + j.holds.length, 0);
  log(
    `stream: ${events.length} events (${charged} to charge, ${events.length - charged} to skip), ` +
      `${inBatches / CFG.batchSize} batches of ${CFG.batchSize} + ${events.length - inBatches} single posts, ${CFG.concurrency} concurrent; ` +
      `${authorizes} authorizes first, ${abandoned.size} of them abandoned (released, never delivered)`,
  );

  // Kill points: distinct fractions of the stream dispatched, 10%..90%.
  const thresholds: number[] = [];
  for (let k = 0; k < CFG.kills; k++) {
    const lo = 0.1 + (0.8 * k) / CFG.kills;
    thresholds.push(lo + r.next() * (0.8 / CFG.kills) * 0.8);
  }

  const gw = new Gateway(keys.gatewayKey);
  const neverShort = accountsNeverShort(fx, events, holds);
  const hg = new HoldGateway(keys.gatewayKey, fx, neverShort);
  let nextJob = 0;
  let dispatched = 0;
  let answered = 0;
  let inFlight = 0;
  let streamDone = false;
  const worker = async (): Promise<void> => {
    while (nextJob < jobs.length) {
      const job = jobs[nextJob++];
      dispatched += job.events.length;
      inFlight++;
      try {
        await authorizeAndDeliver(slot, gw, hg, job);
      } finally {
        inFlight--;
        answered += job.events.length;
      }
    }
  };
  const kills: Kill[] = [];
  const killer = async (): Promise<void> => {
    for (const threshold of thresholds) {
      while (!streamDone && (dispatched < threshold * events.length || inFlight === 0))
        await sleep(1);
      await sleep(r.int(0, 25));
      if (streamDone) return;
      const atPct = (100 * answered) / events.length;
      const flying = inFlight;
      const tk = performance.now();
      await slot.sigkill();
      log(
        `SIGKILL #${kills.length + 1} at ${atPct.toFixed(1)}% answered, ${flying} deliveries in flight`,
      );
      await sleep(r.int(0, 300)); // the gateway keeps retrying against a dead port meanwhile
      const svc = await slot.start();
      const downMs = performance.now() - tk;
      kills.push({ atPct, inFlight: flying, downMs });
      log(
        `  restarted: pid ${svc.pid} on port ${svc.port}, healthy ${Math.round(downMs)} ms after the kill`,
      );
    }
  };
  const tStream = performance.now();
  const progress = setInterval(
    () =>
      log(
        `  … ${answered}/${events.length} answered, ${hg.stats.authorizes} authorizes, ` +
          `${gw.stats.retries + hg.stats.retries} retries so far`,
      ),
    5000,
  );
  try {
    await Promise.all([
      Promise.all(Array.from({ length: CFG.concurrency }, worker)).then(() => {
        streamDone = true;
      }),
      killer(),
    ]);
  } finally {
    clearInterval(progress);
  }
  const streamSeconds = (performance.now() - tStream) / 1000;
  const s = gw.stats;
  log(
    `stream answered in ${streamSeconds.toFixed(1)} s: ${s.deliveries} deliveries, ${s.attempts} attempts, ${s.retries} retries ` +
      `(${s.networkErrors} connection errors, ${s.down} while down, ${s.http5xx} HTTP 5xx, ${s.http409} HTTP 409); ` +
      `${s.recoveredAfterFailure} events committed by an attempt whose answer was lost, answered "duplicate" on retry`,
  );
  for (const m of gw.samples.slice(0, 5)) log(`  e.g. ${m}`);
  const hs = hg.stats;
  log(`holds: ${holdFigures(hg.stats)}`);
  for (const m of hg.samples.slice(0, 3)) log(`  e.g. ${m}`);

  const failures: string[] = [...gw.failures.map((f) => `gateway: ${f}`)];
  failures.push(...hg.failures.map((f) => `authorize: ${f}`));
  // Each request id is authorized by one job only, before its event: nothing else can have
  // closed its hold unless an earlier attempt of the same call got through.
  if (hs.requestSettledFirstTry > 0)
    failures.push(`${hs.requestSettledFirstTry} first-try authorizes answered request_settled`);
  const plan = hg.plan(holds);
  if (kills.length < CFG.kills)
    failures.push(`only ${kills.length} of ${CFG.kills} kills landed mid-stream`);
  const notAnswered = events.filter((e) => !gw.newAnswers.has(e.requestId)).length;

  log('books after the crashes:');
  failures.push(...(await checkBooks(log, dbs.serviceUrl, fx, events, plan)));

  // The gateway resends everything (say, after losing its own outbox): nothing may move.
  log(`replay: all ${events.length} events again, in batches of 500`);
  const replay = new Gateway(keys.gatewayKey);
  for (let i = 0; i < events.length; i += 500)
    await replay.deliver(slot, events.slice(i, i + 500), true);
  const replayDup = replay.stats.duplicateAnswers;
  if (replayDup !== events.length)
    failures.push(`replay: ${replayDup} of ${events.length} answered duplicate`);
  failures.push(...replay.failures.map((f) => `replay: ${f}`));
  const reauth = await reauthorizeFinished(
    slot,
    new HoldGateway(keys.gatewayKey, fx, neverShort),
    holds,
    hg,
  );
  log(`re-authorize: ${reauth.settled}/${reauth.asked} finished requests answered request_settled`);
  if (reauth.settled !== reauth.asked)
    failures.push(`re-authorize: ${reauth.settled} of ${reauth.asked} answered request_settled`);
  failures.push(...reauth.failures.map((f) => `re-authorize: ${f}`));
  log('books after the replay:');
  failures.push(...(await checkBooks(log, dbs.serviceUrl, fx, events, plan)));
  failures.push(...(await negativeControl(log, dbs.serviceUrl, fx, events, plan)));

  const seconds = (performance.now() - t0) / 1000;
  const summary = [
    '',
    `Crash test — seed ${seed}, PostgreSQL ${dbs.serverVersion} (${dbs.source})`,
    `  events:   ${events.length} (${charged} charged, ${events.length - charged} skipped; ${abandoned.size} more abandoned) over ${fx.accounts.length} accounts / ${fx.tokens.length} tokens; ` +
      `${inBatches / CFG.batchSize} batches of ${CFG.batchSize}, ${events.length - inBatches} singles; concurrency ${CFG.concurrency}`,
    `  kills:    ${kills.length} SIGKILLs (planned ${CFG.kills}) at ${kills.map((k) => `${k.atPct.toFixed(0)}% (${k.inFlight} in flight, down ${Math.round(k.downMs)} ms)`).join(', ')}`,
    `  retries:  ${s.retries} (${s.networkErrors} connection errors, ${s.down} while the service was down, ${s.http5xx} HTTP 5xx, ${s.http409} HTTP 409)`,
    `  holds:    ${holdFigures(hg.stats)}`,
    `  re-auth:  ${reauth.settled}/${reauth.asked} finished requests authorized again answered request_settled`,
    `  answers:  ${notAnswered} events committed by an attempt whose answer was lost (the retry got "duplicate"); ` +
      `replay of the whole stream: ${replayDup}/${events.length} "duplicate"`,
    `  duration: stream ${streamSeconds.toFixed(1)} s, total ${seconds.toFixed(1)} s`,
    failures.length === 0
      ? '  PASSED: every event charged exactly once; every balance = its ledger sum; held = Σ active holds; reconcile ok'
      : `  FAILED (${failures.length}):\n${failures.map((f) => `    - ${f}`).join('\n')}`,
  ];
  process.stdout.write(summary.join('\n') + '\n');
  return failures.length === 0;
});

/**
 * Authorizes every finished request again (each delivered one, and each abandoned one that
 * was held, then released) through a fresh gateway: each must answer request_settled, and
 * hold nothing (the books check after the replay would find a new hold).
 */
async function reauthorizeFinished(
  slot: ServiceSlot,
  again: HoldGateway,
  holds: PlannedHold[],
  first: HoldGateway,
): Promise<{ asked: number; settled: number; failures: string[] }> {
  const finished = holds.filter((h) => !h.abandoned || first.allowed.has(h.requestId));
  const answers = await mapLimit(finished, 16, (h) => again.authorize(slot, h));
  const settled = answers.filter((a) => a?.allowed === false && a.reason === 'request_settled');
  return { asked: finished.length, settled: settled.length, failures: again.failures };
}
