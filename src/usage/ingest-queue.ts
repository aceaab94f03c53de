import { Inject, Injectable } from '@nestjs/common';
import { DomainError } from '../common/errors/domain-error.js';
import { GroupCommit } from '../database/group-commit.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { EventOutcome, IncomingEvent, UsageService } from './usage.service.js';

/** Most events one transaction takes (a larger batch still goes whole), and transactions in flight per instance. */
const MAX_BATCH = 256;
const MAX_IN_FLIGHT = 4;
/** Beside a transaction in flight, another starts once this many wait, or after this long. */
const MIN_GROUP_WHILE_BUSY = 4;
const BUSY_WAIT_MS = 2;

/**
 * The one way usage reaches the database, for single events and batches alike: group commit
 * (GroupCommit), so events posted while earlier ones are being written share the next
 * transaction. An event that fails in a group is written again alone, with the full lock
 * wait: one stuck account costs its neighbours at most the group's brief wait.
 */
@Injectable()
export class IngestQueue {
  private readonly queue: GroupCommit<IncomingEvent, EventOutcome>;

  constructor(
    @Inject(UsageService) usage: UsageService,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {
    this.queue = new GroupCommit({
      name: IngestQueue.name,
      maxGroup: MAX_BATCH,
      maxInFlight: MAX_IN_FLIGHT,
      minGroupWhileBusy: MIN_GROUP_WHILE_BUSY,
      busyWaitMs: BUSY_WAIT_MS,
      // A group waits briefly for its accounts' locks; an event written alone waits the full
      // LOCK_TIMEOUT_MS.
      write: (items, alone) => usage.ingest(items, { patient: alone }),
      written: (outcomes) => {
        this.metrics.ingestBatchSize.observe(outcomes.length);
        this.count(outcomes);
      },
    });
  }

  /** One event. Rejects when it cannot be written even on its own. */
  async submit(item: IncomingEvent): Promise<EventOutcome> {
    const [outcome] = await this.queue.submit([item]);
    return outcome;
  }

  /**
   * A batch: one outcome per event in input order. An event that cannot be written even on
   * its own is answered `internal_error`; the others still go through exactly once.
   */
  submitAll(items: IncomingEvent[]): Promise<EventOutcome[]> {
    return this.queue.submit(items, unwritten).catch(() => items.map(unwritten));
  }

  /** What was answered, by outcome; what was newly booked, by model (exact). */
  private count(outcomes: EventOutcome[]): void {
    for (const o of outcomes) {
      if (o.kind === 'rejected') {
        this.metrics.usageEvents.inc({ outcome: 'rejected' });
      } else if (o.kind === 'archived' || o.duplicate) {
        this.metrics.usageEvents.inc({ outcome: 'duplicate' });
      } else {
        this.metrics.usageEvents.inc({ outcome: o.record.outcome });
        if (o.record.outcome === 'charged') this.metrics.charged(o.record.model, o.record.charge);
      }
    }
  }
}

/** A batch's answer for an event that could not be written, even alone: the gateway resends it. */
const unwritten = (item: IncomingEvent): EventOutcome => ({
  kind: 'rejected',
  requestId: item.event.requestId,
  error: new DomainError('internal_error', 'this event could not be recorded; send it again'),
});
