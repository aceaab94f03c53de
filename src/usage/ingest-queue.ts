import { Inject, Injectable } from '@nestjs/common';
import { EventOutcome, IncomingEvent, UsageService } from './usage.service.js';

interface Waiting {
  item: IncomingEvent;
  resolve: (o: EventOutcome) => void;
  reject: (e: unknown) => void;
}

/** Most events one transaction takes, and how many transactions run at once per instance. */
const MAX_BATCH = 256;
const MAX_IN_FLIGHT = 4;

/**
 * Group commit for single-event posts: events that arrive while earlier ones are being
 * written go into the next transaction together. Nothing waits on a timer, so a lone event
 * is written at once; under load, batches grow and round trips per event fall. Every caller
 * gets its answer only after its transaction committed, so nothing lives in memory alone.
 */
@Injectable()
export class IngestQueue {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(@Inject(UsageService) private readonly usage: UsageService) {}

  submit(item: IncomingEvent): Promise<EventOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_BATCH);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async run(batch: Waiting[]): Promise<void> {
    try {
      const outcomes = await this.usage.ingest(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(outcomes[i]));
    } catch (err) {
      if (batch.length === 1) {
        batch[0].reject(err);
        return;
      }
      // One event must not fail its neighbours: retry each on its own.
      await Promise.all(
        batch.map((w) =>
          this.usage.ingest([w.item]).then(
            ([o]) => w.resolve(o),
            (e: unknown) => w.reject(e),
          ),
        ),
      );
    }
  }
}
