import { mapLimit } from '../../bench/lib/stats.js';
import type { Gateway } from './gateway.js';
import type { HoldGateway } from './hold-gateway.js';
import type { PlannedEvent, PlannedHold } from './plan.js';
import type { Target } from './service.js';

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
