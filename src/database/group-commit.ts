import { Logger } from '@nestjs/common';

/**
 * Writes `items` in one transaction and answers one output per item, in order. Throws only
 * when the transaction itself fails. `alone` is true when the items are a failed group's
 * unit written again on its own: a failure now is that unit's own.
 */
export type GroupWrite<I, O> = (items: I[], alone: boolean) => Promise<O[]>;

/** Items submitted together (a batch, or one request): kept in one transaction. */
interface Unit<I, O> {
  items: I[];
  /** How an item that cannot be written even alone is answered; unset, the unit fails. */
  unwritten?: (item: I, err: unknown) => O;
  /** Written alone after its group's transaction failed. */
  isolated: boolean;
  /** When it was queued (performance.now()). */
  since: number;
  resolve: (outputs: O[]) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions<I, O> {
  /** Names the queue in its log lines. */
  name: string;
  /** Most items one transaction takes (a larger unit still goes whole). */
  maxGroup: number;
  /** Transactions in flight at once, per instance. */
  maxInFlight: number;
  /**
   * While a transaction is in flight, another one starts only when this many items wait, or
   * when the oldest has waited `busyWaitMs`: at moderate rates items then share transactions
   * (one commit, one round trip) instead of each taking its own. 1 (the default): start
   * whenever fewer than maxInFlight are in flight.
   */
  minGroupWhileBusy?: number;
  busyWaitMs?: number;
  write: GroupWrite<I, O>;
  /** Sees every group's outputs once written (metrics). */
  written?: (outputs: O[]) => void;
}

/**
 * Group commit: units that arrive while earlier ones are being written go into the next
 * transaction together, so under load one commit (one WAL flush, one round trip) serves many
 * callers. A unit that finds nothing in flight is written at once; beside a transaction in
 * flight, units wait for it to finish unless minGroupWhileBusy items wait or the oldest has
 * waited busyWaitMs. A caller gets its answer only after its transaction committed, so
 * nothing lives in memory alone.
 *
 * Isolation: when a transaction fails, each of its items is queued again on its own, ahead of
 * new work but through the same in-flight limit, so one item the database refuses (or one
 * account whose row lock is stuck) cannot sink its neighbours, and a failing group cannot
 * start a transaction per item at once. An item that fails alone fails for good.
 */
export class GroupCommit<I, O> {
  private readonly logger: Logger;
  private readonly waiting: Unit<I, O>[] = [];
  private waitingItems = 0;
  private inFlight = 0;
  private wake: NodeJS.Timeout | undefined;

  constructor(private readonly opts: GroupCommitOptions<I, O>) {
    this.logger = new Logger(opts.name);
  }

  /**
   * One output per item, in order. With `unwritten`, an item that cannot be written even on
   * its own is answered by it and the others still go through exactly once; without, the
   * whole submission rejects with that item's error.
   */
  submit(items: I[], unwritten?: (item: I, err: unknown) => O): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.enqueue(items, unwritten, false);
  }

  private enqueue(
    items: I[],
    unwritten: ((item: I, err: unknown) => O) | undefined,
    isolated: boolean,
  ): Promise<O[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push(this.unit(items, unwritten, isolated, resolve, reject));
      this.waitingItems += items.length;
      this.drain();
    });
  }

  private unit(
    items: I[],
    unwritten: ((item: I, err: unknown) => O) | undefined,
    isolated: boolean,
    resolve: (outputs: O[]) => void,
    reject: (e: unknown) => void,
  ): Unit<I, O> {
    return { items, unwritten, isolated, since: performance.now(), resolve, reject };
  }

  private drain(): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting.length > 0) {
      if (this.inFlight > 0 && !this.worthAnother()) return;
      const group = this.takeGroup();
      this.inFlight++;
      void this.run(group).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  /**
   * Whether to start another transaction beside those in flight: retries of a failed group
   * go at once; others when enough wait, or the oldest waited long enough (else a timer
   * looks again then, in case nothing in flight finishes first).
   */
  private worthAnother(): boolean {
    const { minGroupWhileBusy = 1, busyWaitMs = 0 } = this.opts;
    const oldest = this.waiting[0];
    if (oldest.isolated || this.waitingItems >= minGroupWhileBusy) return true;
    const waited = performance.now() - oldest.since;
    if (waited >= busyWaitMs) return true;
    if (!this.wake) {
      this.wake = setTimeout(() => {
        this.wake = undefined;
        this.drain();
      }, busyWaitMs - waited);
      this.wake.unref();
    }
    return false;
  }

  /** Whole units up to maxGroup items (always at least one unit); an isolated unit alone. */
  private takeGroup(): Unit<I, O>[] {
    const group = [this.waiting.shift() as Unit<I, O>];
    let size = group[0].items.length;
    if (!group[0].isolated) {
      while (this.waiting.length > 0 && !this.waiting[0].isolated) {
        const next = this.waiting[0];
        if (size + next.items.length > this.opts.maxGroup) break;
        size += next.items.length;
        group.push(this.waiting.shift() as Unit<I, O>);
      }
    }
    this.waitingItems -= size;
    return group;
  }

  private async run(group: Unit<I, O>[]): Promise<void> {
    let outputs: O[];
    try {
      outputs = await this.opts.write(
        group.flatMap((u) => u.items),
        group.every((u) => u.isolated),
      );
    } catch (err) {
      this.fail(group, err);
      return;
    }
    this.opts.written?.(outputs);
    let at = 0;
    for (const unit of group) {
      unit.resolve(outputs.slice(at, at + unit.items.length));
      at += unit.items.length;
    }
  }

  private fail(group: Unit<I, O>[], err: unknown): void {
    if (group.every((u) => u.isolated)) {
      for (const unit of group) unit.reject(err);
      return;
    }
    const items = group.reduce((n, u) => n + u.items.length, 0);
    this.logger.warn(`a write of ${items} items failed; writing each alone: ${String(err)}`);
    // Each item alone, in their order, ahead of new work: their callers have waited longest.
    const retries: Unit<I, O>[] = [];
    for (const unit of group) {
      const { unwritten } = unit;
      const alone = unit.items.map((item) =>
        new Promise<O[]>((resolve, reject) => {
          retries.push(this.unit([item], unwritten, true, resolve, reject));
        }).then(
          ([o]) => o,
          (e: unknown) => {
            if (!unwritten) throw e;
            return unwritten(item, e);
          },
        ),
      );
      Promise.all(alone).then(unit.resolve, unit.reject);
    }
    this.waiting.unshift(...retries);
    this.waitingItems += retries.length;
    this.drain();
  }
}
