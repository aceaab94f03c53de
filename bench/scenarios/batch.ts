/** (3) Batches of `batchSize` usage events per request, beside pgbench's `batch` (100 a transaction). */
import { CFG, log, TARGETS } from '../lib/config.js';
import { fmtInt, toReport } from '../lib/report.js';
import { type ScenarioRunner, withTxns } from '../lib/runner.js';
import type { Traffic } from '../lib/traffic.js';

export async function batches(run: ScenarioRunner, t: Traffic): Promise<void> {
  log(
    `(3) batches of ${CFG.batchSize}: closed loop, ${CFG.batchConcurrency} concurrent, ${CFG.seconds} s (after 1 s warm-up)`,
  );
  await run.closed(t.nextBatch, CFG.batchConcurrency, 1, t.checkBatch);
  const { r, cpu, txns } = await run.closed(
    t.nextBatch,
    CFG.batchConcurrency,
    CFG.seconds,
    t.checkBatch,
  );
  const p = await run.pgb('batch');
  run.announce(
    withTxns(
      toReport(
        'batch',
        `batches of ${CFG.batchSize} (pgbench: 100/txn)`,
        r,
        cpu,
        p,
        `≥ ${fmtInt(TARGETS.batchEventsPerSec)} events/s`,
        (eps) => eps >= TARGETS.batchEventsPerSec,
      ),
      txns,
    ),
  );
}
