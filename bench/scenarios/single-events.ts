/**
 * Single usage events, one per request: over every account and on one hot account (closed
 * loop), at a fixed rate (open loop), each beside its pgbench script run the same way, and one
 * connection back to back (the latency floor).
 */
import { CFG, log, TARGETS } from '../lib/config.js';
import { fmtInt, toReport } from '../lib/report.js';
import { type ScenarioRunner, withTxns } from '../lib/runner.js';
import { round } from '../lib/stats.js';
import type { Traffic } from '../lib/traffic.js';

/** (1) Single events over every account, after a warm-up, beside pgbench's `spread`. */
export async function singleSpread(run: ScenarioRunner, t: Traffic): Promise<void> {
  log(`warm-up: single events, ${CFG.concurrency} connections, ${CFG.warmupSeconds} s`);
  await run.closed(t.nextSpread, CFG.concurrency, CFG.warmupSeconds, t.checkSingle);
  log(
    `(1) single events over ${CFG.accounts} accounts: closed loop, ${CFG.concurrency} connections, ${CFG.seconds} s`,
  );
  await run.closedBesidePgbench({
    id: 'single_spread',
    name: `single events, ${CFG.accounts} accounts`,
    next: t.nextSpread,
    concurrency: CFG.concurrency,
    check: t.checkSingle,
    script: 'spread',
    target: `≥ ${TARGETS.singleRatio} × pgbench`,
    met: (_e, _l, ratio) => ratio !== null && ratio >= TARGETS.singleRatio,
  });
}

/** (2) Single events all on one account, beside pgbench's `hot`. */
export async function singleHot(run: ScenarioRunner, t: Traffic): Promise<void> {
  log(
    `(2) single events on one hot account: closed loop, ${CFG.concurrency} connections, ${CFG.seconds} s`,
  );
  await run.closedBesidePgbench({
    id: 'single_hot',
    name: 'single events, 1 hot account',
    next: t.nextHot,
    concurrency: CFG.concurrency,
    check: t.checkSingle,
    script: 'hot',
    target: `≥ ${TARGETS.hotRatio} × pgbench hot`,
    met: (_e, _l, ratio) => ratio !== null && ratio >= TARGETS.hotRatio,
  });
}

/** (4) Single events at a fixed rate, latency from the scheduled send time. */
export async function singleOpenLoop(run: ScenarioRunner, t: Traffic): Promise<void> {
  log(
    `(4) open loop: ${CFG.openRate} single events/s for ${CFG.seconds} s, latency from the scheduled send time`,
  );
  const { r, cpu, txns, maxSendLagMs } = await run.open(
    t.nextSpread,
    CFG.openRate,
    CFG.seconds,
    t.checkSingle,
  );
  // pgbench's same work at the same rate: its p99 is the floor for the service's.
  const p = await run.pgb('spread', { rate: CFG.openRate });
  const rep = toReport(
    'open_loop',
    `open loop ${fmtInt(CFG.openRate)} events/s`,
    r,
    cpu,
    p,
    `p99 < ${TARGETS.openP99Ms} ms`,
    (_e, l) => l.p99 < TARGETS.openP99Ms,
  );
  rep.extra = { maxSendLagMs: round(maxSendLagMs) };
  run.announce(withTxns(rep, txns));
}

/** (5) One connection, back to back: the latency of one event with nothing else going on. */
export async function singleSerial(run: ScenarioRunner, t: Traffic): Promise<void> {
  const serialSeconds = Math.min(3, CFG.seconds);
  log(`(5) single events, 1 connection back to back, ${serialSeconds} s: the latency floor`);
  const { r, cpu, txns } = await run.closed(t.nextSpread, 1, serialSeconds, t.checkSingle);
  const rep = toReport(
    'serial',
    'single events, 1 connection',
    r,
    cpu,
    null,
    '(latency floor)',
    () => true,
  );
  rep.informational = true;
  run.announce(withTxns(rep, txns));
}
