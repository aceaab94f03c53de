import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../config/app.config.js';
import { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import type { CatalogPrice } from '../catalog/catalog.repository.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { DomainError, invalid, notFound } from '../common/errors/domain-error.js';
import { fingerprint } from '../common/http/canonical-json.js';
import { MONEY_SCALE } from '../common/money/money.js';
import { LedgerService } from '../ledger/ledger.service.js';
import { usageCounts } from '../pricing/counts.js';
import { priceEvent, PricingError, storedLines } from '../pricing/pricing.js';
import { UsageEventDto } from './dto/usage-event.dto.js';
import { withBreakdowns } from './usage.breakdowns.js';
import {
  ArchivedUsage,
  NewUsageRecord,
  storedHash,
  UsageContext,
  UsageRecord,
  UsageRepository,
} from './usage.repository.js';

export type EventOutcome =
  | { kind: 'recorded'; record: UsageRecord; duplicate: boolean }
  /** A replay of a request whose month retention dropped: still a duplicate, charged nothing. */
  | { kind: 'archived'; archived: ArchivedUsage; event: UsageEventDto }
  | { kind: 'rejected'; requestId: string | null; error: DomainError };

export interface IncomingEvent {
  event: UsageEventDto;
  /** Fingerprint of the body: a replay must match it, else 409. */
  hash: string;
}

export const incoming = (event: UsageEventDto): IncomingEvent => ({
  event,
  hash: fingerprint(event),
});

const RETRYABLE = new Set(['40P01', '40001']); // deadlock_detected, serialization_failure
const MAX_ATTEMPTS = 3;
/** Token contexts (and prices) kept for the one-round-trip write; cleared when full. */
const MAX_REMEMBERED = 100_000;

/** One event on its way through a write: what came in, what it was priced as, how it ended. */
interface Slot {
  item: IncomingEvent;
  /** A later copy of a request id in the same list follows its first. */
  copyOf?: Slot;
  record?: NewUsageRecord;
  outcome?: EventOutcome;
}

const rejected = (requestId: string, error: DomainError): EventOutcome => ({
  kind: 'rejected',
  requestId,
  error,
});

/**
 * Turns gateway events into usage records, ledger entries and balance changes. A list of
 * events (a batch, or single events that arrived together; see IngestQueue) is written in one
 * transaction: the short way (book) is one call of usage_book, priced with the token contexts
 * and prices the last writes read and checked by the database under its locks; the long way
 * (write) is lock the accounts (reading the tokens' context), insert the new events (with
 * token spend, hold settlement and daily roll-ups), book the ledger, commit.
 */
@Injectable()
export class UsageService {
  private readonly logger = new Logger(UsageService.name);

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(UsageRepository) private readonly repo: UsageRepository,
    @Inject(LedgerService) private readonly ledger: LedgerService,
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.lockTimeoutMs = config.get('database', { infer: true }).lockTimeoutMs;
  }

  private readonly lockTimeoutMs: number;

  /**
   * Writes `items` in one transaction and answers one outcome per item, in order. Throws only
   * when the transaction itself fails; the caller (IngestQueue) isolates events then.
   */
  async ingest(items: IncomingEvent[], opts: { patient?: boolean } = {}): Promise<EventOutcome[]> {
    const slots: Slot[] = items.map((item) => ({ item }));
    // The first event with a request id is the one processed; later copies in the same
    // list follow it (same body) or conflict with it (different body).
    const first = new Map<string, Slot>();
    for (const slot of slots) {
      const prior = first.get(slot.item.event.requestId);
      if (!prior) first.set(slot.item.event.requestId, slot);
      else if (prior.item.hash !== slot.item.hash)
        slot.outcome = conflictFor(slot.item.event.requestId);
      else slot.copyOf = prior;
    }
    const primaries = [...first.values()];
    // Patient writes (an event alone after its group failed) take the long way, with its lock wait.
    const booked =
      primaries.length > 0 && !opts.patient && (await this.withRetry(() => this.book(primaries)));
    if (primaries.length > 0 && !booked) {
      // Prices are read on another connection while the transaction takes its locks.
      const prices = this.catalog.currentPrices([
        ...new Set(primaries.map((p) => p.item.event.model)),
      ]);
      prices.catch(() => undefined); // awaited below; a failed transaction must not leave it unhandled
      await this.withRetry(() =>
        this.ds.transaction(async (em) => {
          // The pool's lock_timeout is the brief wait of a group; alone, an event waits longer.
          if (opts.patient)
            await em.query(`SELECT set_config('lock_timeout', $1, true)`, [
              `${this.lockTimeoutMs}ms`,
            ]);
          await this.write(primaries, prices, em);
        }),
      );
    }
    return slots.map((slot) => {
      if (slot.outcome) return slot.outcome;
      const o = slot.copyOf?.outcome;
      if (!o) throw new Error(`request ${slot.item.event.requestId} got no outcome`);
      // Copies inside the list take their first's outcome, as a duplicate.
      return o.kind === 'recorded' ? { ...o, duplicate: true } : o;
    });
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = err as { code?: string; driverError?: { code?: string } };
        const code = e.driverError?.code ?? e.code;
        if (attempt >= MAX_ATTEMPTS || !code || !RETRYABLE.has(code)) throw err;
        this.logger.warn(`usage write retried after ${code} (attempt ${attempt})`);
      }
    }
  }

  /**
   * The short way, one round trip (UsageRepository.bookPriced): prices the events with the
   * token contexts and prices an earlier write read, and has the database check under its
   * locks that they are all still in force before writing anything. False when some context or
   * price is not known here yet or no longer in force: nothing was written, and the caller
   * takes the long way (write), which reads them anew.
   */
  private async book(slots: Slot[]): Promise<boolean> {
    const pending: Slot[] = [];
    for (const slot of slots) {
      const { event, hash } = slot.item;
      const ctx = this.contexts.get(event.tokenId);
      const price = this.prices.get(event.model);
      if (!ctx || !price) return false;
      const record = this.price(event, hash, ctx, price);
      slot.record = undefined;
      if (record instanceof DomainError) slot.outcome = rejected(event.requestId, record);
      else {
        slot.record = record;
        pending.push(slot);
      }
    }
    if (pending.length === 0) return true;
    const records = pending.map((s) => s.record as NewUsageRecord);
    const inserted = await this.repo.bookPriced(records);
    if (!inserted) return false;
    const byId = new Map<string, UsageRecord>();
    for (const r of records) {
      const row = inserted.get(r.requestId);
      if (row) byId.set(r.requestId, asRecorded(r, row.id, row.recordedAt));
    }
    await this.settle(pending, byId);
    return true;
  }

  /** Token contexts and current prices the last long-way writes read: what book() prices with. */
  private readonly contexts = new Map<string, UsageContext>();
  private readonly prices = new Map<string, CatalogPrice>();

  private remember(contexts: Map<string, UsageContext>, prices: Map<string, CatalogPrice>): void {
    if (this.contexts.size + contexts.size > MAX_REMEMBERED) this.contexts.clear();
    for (const [id, ctx] of contexts) this.contexts.set(id, ctx);
    if (this.prices.size + prices.size > MAX_REMEMBERED) this.prices.clear();
    for (const [model, price] of prices) this.prices.set(model, price);
  }

  /**
   * The accounts are locked first, so everything is dated after the locks (one booking time
   * for events, entries and roll-ups) and an account's bookings are dated in chain order.
   * Locking before inserting cannot deadlock: a transaction waits on another's request id
   * only after it holds all its own locks, and the holder never waits on it after that.
   * Each slot gets its outcome; a retried attempt overwrites the previous one's.
   */
  private async write(
    slots: Slot[],
    pricesPromise: Promise<Map<string, CatalogPrice>>,
    em: EntityManager,
  ): Promise<void> {
    const { contexts, booking } = await this.repo.lockForUsage(
      [...new Set(slots.map((s) => s.item.event.tokenId))],
      em,
    );
    const prices = await pricesPromise;
    this.remember(contexts, prices);
    const pending: Slot[] = [];
    for (const slot of slots) {
      const { event, hash } = slot.item;
      const ctx = contexts.get(event.tokenId);
      const price = prices.get(event.model);
      slot.record = undefined;
      if (!ctx) slot.outcome = rejected(event.requestId, notFound(`token ${event.tokenId}`));
      else if (!price)
        slot.outcome = rejected(
          event.requestId,
          invalid('model', `model ${event.model} is not priced`),
        );
      else {
        const record = this.price(event, hash, ctx, price);
        if (record instanceof DomainError) slot.outcome = rejected(event.requestId, record);
        else {
          slot.record = record;
          pending.push(slot);
        }
      }
    }
    const records = pending.map((s) => s.record as NewUsageRecord);
    if (records.length === 0) return;

    const inserted = await this.repo.insertNew(records, booking.bookedAt, em);
    const pricedById = new Map(records.map((r) => [r.requestId, r]));
    // A new event's breakdown is the one just priced; a stored one is rebuilt from its version.
    const byId = new Map<string, UsageRecord>(
      inserted.map((r) => [
        r.requestId,
        { ...r, breakdown: (pricedById.get(r.requestId) as NewUsageRecord).breakdown },
      ]),
    );
    // Every charged record gets exactly one ledger entry, even a zero one, so reconciliation is one-to-one.
    await this.ledger.bookMany(
      inserted
        .filter((r) => r.outcome === 'charged')
        .map((r) => ({
          accountId: r.accountId,
          type: 'usage' as const,
          amount: r.charge.neg(),
          // Described on read as "<model> request <requestId>"; only the model is stored.
          model: r.model,
          reference: r.requestId,
        })),
      booking,
      em,
    );
    await this.settle(pending, byId, em);
  }

  /**
   * Gives each pending slot its outcome: recorded by this write (in `byId`), or a delivery of
   * a request id registered before, read back here (a duplicate when the body matches, else a
   * conflict; archived when retention dropped its month).
   */
  private async settle(
    pending: Slot[],
    byId: Map<string, UsageRecord>,
    em: EntityManager = this.ds.manager,
  ): Promise<void> {
    const missing = pending
      .map((s) => (s.record as NewUsageRecord).requestId)
      .filter((id) => !byId.has(id));
    const found = missing.length > 0 ? await this.repo.findByRequestIds(missing, em) : null;
    const stored = found ? await withBreakdowns(found.stored, this.catalog) : [];
    const storedById = new Map(stored.map((r) => [r.requestId, r]));
    const archivedById = new Map((found?.archived ?? []).map((r) => [r.requestId, r]));
    for (const slot of pending) {
      const r = slot.record as NewUsageRecord;
      const mine = byId.get(r.requestId);
      const prior = storedById.get(r.requestId);
      const archived = archivedById.get(r.requestId);
      if (mine) slot.outcome = { kind: 'recorded', record: mine, duplicate: false };
      else if (prior) {
        slot.outcome =
          prior.requestHash !== storedHash(r.requestHash)
            ? conflictFor(r.requestId)
            : { kind: 'recorded', record: prior, duplicate: true };
      } else if (archived) {
        slot.outcome =
          archived.requestHash !== storedHash(r.requestHash)
            ? conflictFor(r.requestId)
            : { kind: 'archived', archived, event: slot.item.event };
      } else throw new Error(`request ${r.requestId} neither inserted nor stored`);
    }
  }

  /** Prices one event with the token's group ratio as it stands under the lock. */
  private price(
    event: UsageEventDto,
    hash: string,
    ctx: UsageContext,
    price: CatalogPrice,
  ): NewUsageRecord | DomainError {
    try {
      const priced = priceEvent(event, price, ctx.ratio);
      const counts = usageCounts(event, priced.outcome === 'charged');
      // Stored at the ledger's scale; half-up where a price had more digits than that.
      const charge = priced.charge.toDecimalPlaces(MONEY_SCALE, Decimal.ROUND_HALF_UP);
      // An outsized charge (an absurd token count, a runaway batch) waits for an admin.
      const review =
        priced.outcome === 'charged' && price.reviewAbove !== null && charge.gt(price.reviewAbove);
      return {
        requestId: event.requestId,
        requestHash: hash,
        accountId: ctx.accountId,
        tokenId: ctx.tokenId,
        model: event.model,
        outcome: review ? 'review' : priced.outcome,
        reason: review ? 'above_review_limit' : priced.outcome === 'skipped' ? priced.reason : null,
        charge,
        group: ctx.group,
        ratio: ctx.ratio,
        priceVersionId: price.id,
        priceVersion: price.version,
        breakdown: priced.outcome === 'charged' ? priced.breakdown : [],
        counts,
        lines:
          priced.outcome === 'charged' ? storedLines(price.mode, priced.quantities, counts) : null,
        occurredAt: event.occurredAt ? new Date(event.occurredAt) : new Date(),
      };
    } catch (err) {
      if (!(err instanceof PricingError)) throw err;
      return new DomainError('validation_failed', err.message, [
        { field: err.field, message: err.message },
      ]);
    }
  }
}

function conflictFor(requestId: string): EventOutcome {
  return rejected(
    requestId,
    new DomainError(
      'conflict',
      `requestId ${requestId} was already recorded with a different body`,
    ),
  );
}

/** A record book() inserted, as insertNew would have read it back. */
function asRecorded(r: NewUsageRecord, id: string, recordedAt: Date): UsageRecord {
  return {
    id,
    requestId: r.requestId,
    requestHash: storedHash(r.requestHash),
    accountId: r.accountId,
    tokenId: r.tokenId,
    model: r.model,
    outcome: r.outcome,
    reason: r.reason,
    charge: r.charge,
    group: r.group,
    ratio: r.ratio,
    priceVersionId: r.priceVersionId,
    priceVersion: r.priceVersion,
    quantities: {
      inputTokens: r.counts.inputTokens,
      outputTokens: r.counts.outputTokens,
      images: r.counts.images,
      lines: r.lines,
    },
    occurredAt: r.occurredAt,
    recordedAt,
    reviewedAt: null,
    breakdown: r.breakdown,
  };
}
