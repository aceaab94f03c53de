/**
 * `npm run test:instances`: two service processes on one database.
 *
 * 1. Start race: both instances are started at the same moment on a fresh database (and on
 *    further fresh databases, TWO_RACE_ROUNDS in all): both must become healthy, migrations
 *    must have run once, seeds exactly once.
 * 2. Shared stream: one stream of events split across both, with duplicates spread over them:
 *    about 20% of the events go to BOTH instances at the same moment (as single posts, as the
 *    same batch, or in a batch on one and single on the other), some go twice to the same
 *    one. Every event must be recorded anew by exactly one answer and charged exactly once;
 *    the books are checked by direct SQL and then by `reconcile-cli`.
 *    Each delivery authorizes its requests first (almost all of them) on its instance, so a
 *    request sent to both is authorized on both at once: each answer is the one same hold, or
 *    request_settled once the other's event settled it. A few single requests are abandoned
 *    (authorized, then released, some on both instances at once). The books check also
 *    requires held = Σ active holds, every stored hold as planned, no charged request holding
 *    money and no released request with usage.
 *
 * Env: DATABASE_URL (unset: embedded PostgreSQL), TWO_EVENTS (3000), TWO_ACCOUNTS (20),
 * TWO_CONCURRENCY (32), TWO_RACE_ROUNDS (3), TWO_SEED.
 */
import pg from 'pg';
import { prepareDatabases, withClient, withDatabase } from '../bench/lib/db.js';
import { MIGRATIONS } from '../src/database/data-source.js';
import {
  accountsNeverShort,
  authorizeAndDeliver,
  checkBooks,
  negativeControl,
  envInt,
  errText,
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

interface Delivery extends GatewayJob {
  to: ServiceSlot;
}

/** Migrations ran once and every seed exactly once. */
async function checkSchemaAndSeeds(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const problems: string[] = [];
  try {
    const one = async (sql: string): Promise<string> => {
      const r = await c.query<{ v: string }>(sql);
      return r.rows.map((x) => x.v).join(',');
    };
    const migrations = await one(
      `SELECT COUNT(*)::text || '/' || COUNT(DISTINCT name)::text AS v FROM migrations`,
    );
    const want = `${MIGRATIONS.length}/${MIGRATIONS.length}`;
    if (migrations !== want)
      problems.push(`migrations rows/distinct ${migrations}, expected ${want}`);
    const seeds = await one(`SELECT name AS v FROM seed_runs ORDER BY name`);
    if (seeds !== 'catalog.v1,groups.v1,promotions.v1') problems.push(`seed_runs: ${seeds}`);
    const groups = await one(
      `SELECT name || '=' || ratio::text || (CASE WHEN is_default THEN '*' ELSE '' END) AS v FROM groups ORDER BY name`,
    );
    if (groups !== 'default=1.0000000000*,image2Enterprise=1.2000000000')
      problems.push(`groups: ${groups}`);
    const prices = await one(
      `SELECT model || ':' || COUNT(*)::text AS v FROM price_versions GROUP BY model ORDER BY model`,
    );
    if (prices !== 'gpt-image-2:1,gpt-image-2-all:1,gpt-image-2-vip:1')
      problems.push(`price versions: ${prices}`);
    const promos = await one(`SELECT COUNT(*)::text AS v FROM promotions`);
    if (promos !== '1') problems.push(`promotions: ${promos} rows, expected the one seeded`);
  } finally {
    await c.end();
  }
  return problems;
}

runMain('two-instances', 900, async (h) => {
  const { log } = h;
  const seed = seedFrom('TWO_SEED');
  const r = rng(seed);
  const CFG = {
    events: envInt('TWO_EVENTS', 3000),
    accounts: envInt('TWO_ACCOUNTS', 20),
    concurrency: envInt('TWO_CONCURRENCY', 32),
    raceRounds: envInt('TWO_RACE_ROUNDS', 3),
    batchSize: 50,
    batchShare: 1 / 3,
    bothShare: 0.2,
    sameTwiceShare: 0.05,
    /** Requests authorized before each of their deliveries (the rest go without a hold). */
    authorizeShare: 0.95,
    /** Single requests abandoned: authorized, then released instead of delivered. */
    abandonShare: 0.04,
  };
  log(`seed ${seed} (TWO_SEED=${seed} replays this stream): ${JSON.stringify(CFG)}`);
  const t0 = performance.now();
  const failures: string[] = [];

  const dbs = await prepareDatabases(log);
  h.onCleanup(() => dbs.cleanup());
  log(`PostgreSQL ${dbs.serverVersion} (${dbs.source})`);
  const keys = newKeys();
  const slotOn = (url: string, name: string): ServiceSlot => {
    const s = new ServiceSlot(name, {
      databaseUrl: url,
      ...keys,
      logDir: h.outDir,
      maxSockets: CFG.concurrency * 2 + 4,
    });
    h.onCleanup(() => s.stop());
    return s;
  };

  // ---- 1. both instances started at the same moment on a fresh database ------------------------
  const race = async (
    url: string,
    a: ServiceSlot,
    b: ServiceSlot,
    round: number,
  ): Promise<void> => {
    const tr = performance.now();
    const settled = await Promise.allSettled([a.start(), b.start()]);
    const ms = Math.round(performance.now() - tr);
    const broken = settled.flatMap((s, i) =>
      s.status === 'rejected' ? [`${i === 0 ? a.name : b.name}: ${errText(s.reason)}`] : [],
    );
    if (broken.length) {
      failures.push(...broken.map((m) => `start race ${round}: ${m}`));
      log(`start race ${round}: FAILED: ${broken.join('; ')}`);
      return;
    }
    const problems = await checkSchemaAndSeeds(url);
    failures.push(...problems.map((p) => `start race ${round}: ${p}`));
    log(
      `start race ${round}: ${a.name} (pid ${a.pid}) and ${b.name} (pid ${b.pid}) started together on a fresh database, both healthy within ${ms} ms; ` +
        (problems.length ? `PROBLEMS: ${problems.join('; ')}` : 'migrations ran once, seeds once'),
    );
  };
  for (let round = 2; round <= CFG.raceRounds; round++) {
    const db = `faults_race_${round}_${process.pid}`;
    await withClient(dbs.serviceUrl, (c) => c.query(`CREATE DATABASE ${db}`));
    const url = withDatabase(dbs.serviceUrl, db);
    const a = slotOn(url, `race${round}-a`);
    const b = slotOn(url, `race${round}-b`);
    try {
      await race(url, a, b, round);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await withClient(dbs.serviceUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`),
      );
    }
  }
  const A = slotOn(dbs.serviceUrl, 'A');
  const B = slotOn(dbs.serviceUrl, 'B');
  await race(dbs.serviceUrl, A, B, 1);
  const ca = A.client();
  const cb = B.client();
  if (!ca || !cb) throw new Error('the instances did not both start; see above');
  log(
    `instances: A pid ${A.pid} on :${A.port}, B pid ${B.pid} on :${B.port} (logs in ${h.outDir})`,
  );

  // ---- 2. one stream, duplicates spread across both ----------------------------------------------
  const fx = await setupAccounts({
    clients: [ca, cb],
    adminKey: keys.adminKey,
    accounts: CFG.accounts,
    tokensPerAccount: 2,
    credit: (i) => (i < 2 ? '0.50' : '250.00'),
    tag: 'two',
  });
  log(
    `set-up through both instances: ${fx.accounts.length} accounts credited, ${fx.tokens.length} tokens`,
  );

  const runTag = `t${seed.toString(36)}${Date.now().toString(36)}`;
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
  // Which requests the gateway authorizes: the same ones on every delivery.
  const authorized = new Set(
    holds.filter((h) => h.abandoned || r.chance(CFG.authorizeShare)).map((h) => h.requestId),
  );
  const holdsFor = (evs: PlannedEvent[]): PlannedHold[] =>
    evs.flatMap((e) => {
      const h = holdOf.get(e.requestId);
      return h && authorized.has(h.requestId) ? [h] : [];
    });
  const deliver = (to: ServiceSlot, evs: PlannedEvent[], batch: boolean): Delivery => ({
    to,
    holds: holdsFor(evs),
    events: evs,
    batch,
  });
  const abandon = (to: ServiceSlot, e: PlannedEvent): Delivery => ({
    to,
    holds: holdsFor([e]),
    events: [],
    batch: false,
  });
  const other = (s: ServiceSlot): ServiceSlot => (s === A ? B : A);
  const groups: Delivery[][] = [];
  const toBoth = new Set<string>();
  const sameTwice = new Set<string>();
  let abandonedOnBoth = 0;
  let crossShape = 0;
  for (let i = 0; i < inBatches; i += CFG.batchSize) {
    const evs = planned.slice(i, i + CFG.batchSize);
    const to = r.chance(0.5) ? A : B;
    const g: Delivery[] = [deliver(to, evs, true)];
    const roll = r.next();
    if (roll < CFG.bothShare) {
      g.push(deliver(other(to), evs, true)); // the same batch to both
      evs.forEach((e) => toBoth.add(e.requestId));
    } else if (roll < CFG.bothShare + CFG.sameTwiceShare) {
      g.push(deliver(to, evs, true)); // the same batch twice to one
      evs.forEach((e) => sameTwice.add(e.requestId));
    } else {
      // Some of its events also posted singly to the other instance, at the same moment.
      for (const e of evs) {
        if (!r.chance(CFG.bothShare)) continue;
        g.push(deliver(other(to), [e], false));
        toBoth.add(e.requestId);
        crossShape++;
      }
      // And a few as a smaller batch of their own on the other one.
      if (r.chance(0.3)) {
        const sub = evs.filter(() => r.chance(0.2));
        if (sub.length > 0) {
          g.push(deliver(other(to), sub, true));
          sub.forEach((e) => toBoth.add(e.requestId));
          crossShape += sub.length;
        }
      }
    }
    groups.push(g);
  }
  for (const e of planned.slice(inBatches)) {
    const to = r.chance(0.5) ? A : B;
    if (abandoned.has(e.requestId)) {
      // Abandoned work, sometimes authorized and released on both instances at once.
      const g = [abandon(to, e)];
      if (r.chance(CFG.bothShare)) {
        g.push(abandon(other(to), e));
        abandonedOnBoth++;
      }
      groups.push(g);
      continue;
    }
    const g: Delivery[] = [deliver(to, [e], false)];
    const roll = r.next();
    if (roll < CFG.bothShare) {
      g.push(deliver(other(to), [e], false));
      toBoth.add(e.requestId);
    } else if (roll < CFG.bothShare + CFG.sameTwiceShare) {
      g.push(deliver(to, [e], false));
      sameTwice.add(e.requestId);
    }
    groups.push(g);
  }
  r.shuffle(groups);
  const deliveries = groups.reduce((n, g) => n + g.length, 0);
  log(
    `stream: ${events.length} events in ${deliveries} deliveries; ${toBoth.size} (${((100 * toBoth.size) / events.length).toFixed(1)}%) sent to both ` +
      `instances at the same moment (${crossShape} of them as batch on one + single or sub-batch on the other), ` +
      `${sameTwice.size} sent twice to the same instance; ${CFG.concurrency} groups in flight; ` +
      `${authorized.size} requests authorized first on each of their deliveries, ${abandoned.size} of them abandoned ` +
      `(${abandonedOnBoth} on both instances at once)`,
  );

  const gw = new Gateway(keys.gatewayKey);
  const hg = new HoldGateway(keys.gatewayKey, fx, accountsNeverShort(fx, events, holds));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < groups.length) {
      const g = groups[next++];
      await Promise.all(g.map((d) => authorizeAndDeliver(d.to, gw, hg, d)));
    }
  };
  const tStream = performance.now();
  await Promise.all(Array.from({ length: CFG.concurrency }, worker));
  const streamSeconds = (performance.now() - tStream) / 1000;
  const s = gw.stats;
  const byA = gw.newByTarget.get('A') ?? 0;
  const byB = gw.newByTarget.get('B') ?? 0;
  log(
    `stream answered in ${streamSeconds.toFixed(1)} s: ${s.attempts} requests, ${s.retries} retries ` +
      `(${s.networkErrors} connection errors, ${s.http5xx} HTTP 5xx, ${s.http409} HTTP 409); ` +
      `recorded anew by A: ${byA}, by B: ${byB}; "duplicate" answers: ${s.duplicateAnswers}`,
  );
  for (const m of gw.samples.slice(0, 5)) log(`  e.g. ${m}`);
  const hs = hg.stats;
  log(`holds: ${holdFigures(hg.stats)}`);
  for (const m of hg.samples.slice(0, 3)) log(`  e.g. ${m}`);

  failures.push(...gw.failures.map((f) => `gateway: ${f}`));
  failures.push(...hg.failures.map((f) => `authorize: ${f}`));
  if (hs.retries > 0)
    failures.push(
      `${hs.retries} authorize/release retries without any fault injected: ${hg.samples.slice(0, 3).join(' | ')}`,
    );
  // Nothing was killed: every request must have been answered at once, and every event
  // recorded anew by exactly one of its deliveries.
  if (s.retries > 0)
    failures.push(
      `${s.retries} retries without any fault injected (${s.networkErrors} connection errors, ${s.http5xx} 5xx, ${s.http409} 409): ${gw.samples.slice(0, 3).join(' | ')}`,
    );
  const notOnce = events.filter((e) => gw.newAnswers.get(e.requestId) !== 1);
  if (notOnce.length > 0)
    failures.push(
      `${notOnce.length} events not recorded anew by exactly one answer, e.g. ${notOnce[0].requestId}`,
    );
  const extraDeliveries = deliveries - groups.length;
  const expectedDup =
    groups.reduce((n, g) => n + g.reduce((m, d) => m + d.events.length, 0), 0) - events.length;
  if (s.duplicateAnswers !== expectedDup)
    failures.push(`${s.duplicateAnswers} duplicate answers, expected ${expectedDup}`);
  if (byA === 0 || byB === 0)
    failures.push('one instance recorded nothing: the stream was not shared');

  log('books:');
  const plan = hg.plan(holds);
  failures.push(...(await checkBooks(log, dbs.serviceUrl, fx, events, plan)));
  failures.push(...(await negativeControl(log, dbs.serviceUrl, fx, events, plan)));

  const seconds = (performance.now() - t0) / 1000;
  const summary = [
    '',
    `Two-instance test — seed ${seed}, PostgreSQL ${dbs.serverVersion} (${dbs.source})`,
    `  start race: ${CFG.raceRounds} fresh databases, two instances started together on each`,
    `  events:     ${events.length} over ${fx.accounts.length} accounts, ${deliveries} deliveries (${extraDeliveries} extra); ` +
      `${toBoth.size} to both instances concurrently, ${sameTwice.size} twice to one; ${abandoned.size} more abandoned`,
    `  holds:      ${holdFigures(hg.stats)}`,
    `  answers:    A recorded ${byA}, B recorded ${byB}, ${s.duplicateAnswers} "duplicate" (expected ${expectedDup}); retries ${s.retries}`,
    `  duration:   stream ${streamSeconds.toFixed(1)} s, total ${seconds.toFixed(1)} s`,
    failures.length === 0
      ? '  PASSED: both instances healthy from a simultaneous start; every event charged exactly once; held = Σ active holds; reconcile ok'
      : `  FAILED (${failures.length}):\n${failures.map((f) => `    - ${f}`).join('\n')}`,
  ];
  process.stdout.write(summary.join('\n') + '\n');
  return failures.length === 0;
});
