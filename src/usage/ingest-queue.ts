import { Inject, Injectable, Logger } from '@nestjs/common';
import { DomainError } from '../common/errors/domain-error.js';
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
 * Isolation: when a transaction of several events fails, each of them is queued again on its
 * own, ahead of new work but through the same in-flight limit, so one event the database
 * refuses cannot sink its neighbours and a failing batch cannot start a transaction per event
 * at once.
 */
@Injectable()
export class IngestQueue {
  private readonly logger = new Logger(IngestQueue.name);
  private readonly waiting: Unit[] = [];
  private inFlight = 0;

  constructor(@Inject(UsageService) private readonly usage: UsageService) {}

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
      outcomes = await this.usage.ingest(group.flatMap((u) => u.items));
    } catch (err) {
      this.fail(group, err);
      return;
    }
    let at = 0;
    for (const unit of group) {
      unit.resolve(outcomes.slice(at, at + unit.items.length));
      at += unit.items.length;
    }
  }

  private fail(group: Unit[], err: unknown): void {
    const events = group.reduce((n, u) => n + u.items.length, 0);
    if (events === 1) {
      group[0].reject(err);
      return;
    }
    this.logger.error(`a write of ${events} events failed; writing each alone: ${String(err)}`);
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
