import { Inject, Injectable, Logger } from '@nestjs/common';
import { DomainError } from '../common/errors/domain-error.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { EventOutcome, IncomingEvent, UsageService } from './usage.service.js';

/** Events posted together (a batch, or one single event): kept in one transaction. */
interface Unit {
  items: IncomingEvent[];
  /** A batch answers an event that cannot be written with a rejected outcome; a single post fails. */
  batch: boolean;
  /** Written alone after its group's transaction failed: a failure now is its own. */
  isolated: boolean;
  resolve: (outcomes: EventOutcome[]) => void;
  reject: (e: unknown) => void;
}

/** Most events one transaction takes (a larger unit still goes whole), and transactions in flight per instance. */
const MAX_BATCH = 256;
const MAX_IN_FLIGHT = 4;

/**
 * The one way usage reaches the database, for single events and batches alike: group commit.
 * Units that arrive while earlier ones are being written go into the next transaction
 * together. Nothing waits on a timer, so a lone event is written at once; under load,
 * transactions grow and round trips per event fall. A caller gets its answer only after its
 * transaction committed, so nothing lives in memory alone.
 *
 * Isolation: when a transaction fails, each of its events is queued again on its own, ahead
 * of new work but through the same in-flight limit, so one event the database refuses (or one
 * account whose row lock is stuck) cannot sink its neighbours, and a failing batch cannot
 * start a transaction per event at once. An event that fails alone fails for good.
 */
@Injectable()
export class IngestQueue {
  private readonly logger = new Logger(IngestQueue.name);
  private readonly waiting: Unit[] = [];
  private inFlight = 0;

  constructor(
    @Inject(UsageService) private readonly usage: UsageService,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  /** One event. Rejects when it cannot be written even on its own. */
  async submit(item: IncomingEvent): Promise<EventOutcome> {
    const [outcome] = await this.enqueue([item], { batch: false, isolated: false });
    return outcome;
  }

  /**
   * A batch: one outcome per event in input order. An event that cannot be written even on
   * its own is answered `internal_error`; the others still go through exactly once.
   */
  submitAll(items: IncomingEvent[]): Promise<EventOutcome[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.enqueue(items, { batch: true, isolated: false }).catch(() =>
      items.map((item) => unwritten(item)),
    );
  }

  private enqueue(
    items: IncomingEvent[],
    kind: { batch: boolean; isolated: boolean },
  ): Promise<EventOutcome[]> {
    return new Promise((resolve, reject) => {
      const unit: Unit = { items, ...kind, resolve, reject };
      // Retries of a failed group go first: their callers have waited longest.
      if (kind.isolated) this.waiting.unshift(unit);
      else this.waiting.push(unit);
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.waiting.length > 0) {
      const group = this.takeGroup();
      this.inFlight++;
      void this.run(group).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  /** Whole units up to MAX_BATCH events (always at least one unit); an isolated unit alone. */
  private takeGroup(): Unit[] {
    const group = [this.waiting.shift() as Unit];
    if (group[0].isolated) return group;
    let size = group[0].items.length;
    while (this.waiting.length > 0 && !this.waiting[0].isolated) {
      const next = this.waiting[0];
      if (size + next.items.length > MAX_BATCH) break;
      size += next.items.length;
      group.push(this.waiting.shift() as Unit);
    }
    return group;
  }

  private async run(group: Unit[]): Promise<void> {
    let outcomes: EventOutcome[];
    try {
      // A group waits briefly for its accounts' locks; an event written alone waits the full
      // LOCK_TIMEOUT_MS. So one stuck account costs its neighbours at most the brief wait.
      outcomes = await this.usage.ingest(
        group.flatMap((u) => u.items),
        {
          patient: group.every((u) => u.isolated),
        },
      );
    } catch (err) {
      this.fail(group, err);
      return;
    }
    this.metrics.ingestBatchSize.observe(outcomes.length);
    this.count(outcomes);
    let at = 0;
    for (const unit of group) {
      unit.resolve(outcomes.slice(at, at + unit.items.length));
      at += unit.items.length;
    }
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

  private fail(group: Unit[], err: unknown): void {
    if (group.every((u) => u.isolated)) {
      for (const unit of group) unit.reject(err);
      return;
    }
    const events = group.reduce((n, u) => n + u.items.length, 0);
    this.logger.warn(`a write of ${events} events failed; writing each alone: ${String(err)}`);
    for (const unit of group) {
      const alone = unit.items.map((item) =>
        this.enqueue([item], { batch: unit.batch, isolated: true }).then(
          ([o]) => o,
          (e: unknown) => {
            if (!unit.batch) throw e;
            return unwritten(item);
          },
        ),
      );
      Promise.all(alone).then(unit.resolve, unit.reject);
    }
  }
}

/** A batch's answer for an event that could not be written, even alone: the gateway resends it. */
const unwritten = (item: IncomingEvent): EventOutcome => ({
  kind: 'rejected',
  requestId: item.event.requestId,
  error: new DomainError('internal_error', 'this event could not be recorded; send it again'),
});
