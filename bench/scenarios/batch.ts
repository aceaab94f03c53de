/** (3) Batches of `batchSize` usage events per request, beside pgbench's `batch` (100 a transaction). */
import { CFG, log, TARGETS } from '../lib/config.js';
import { fmtInt } from '../lib/report.js';
import type { ScenarioRunner } from '../lib/runner.js';
import type { Traffic } from '../lib/traffic.js';

export async function batches(run: ScenarioRunner, t: Traffic): Promise<void> {
  log(
    `(3) batches of ${CFG.batchSize}: closed loop, ${CFG.batchConcurrency} concurrent, ${CFG.seconds} s (after 1 s warm-up)`,
  );
  await run.closed(t.nextBatch, CFG.batchConcurrency, 1, t.checkBatch);
  await run.closedBesidePgbench({
    id: 'batch',
    name: `batches of ${CFG.batchSize} (pgbench: 100/txn)`,
    next: t.nextBatch,
    concurrency: CFG.batchConcurrency,
    check: t.checkBatch,
    script: 'batch',
    target: `≥ ${fmtInt(TARGETS.batchEventsPerSec)} events/s`,
    met: (eps) => eps >= TARGETS.batchEventsPerSec,
  });
}
