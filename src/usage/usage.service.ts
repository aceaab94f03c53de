import { Inject, Injectable, Logger } from '@nestjs/common';
import { Decimal } from 'decimal.js';
import { DataSource } from 'typeorm';
import { CatalogService } from '../catalog/catalog.service.js';
import { DomainError, invalid, notFound } from '../common/errors/domain-error.js';
import { fingerprint } from '../common/http/canonical-json.js';
import { MONEY_SCALE, ZERO } from '../common/money/money.js';
import { LedgerService } from '../ledger/ledger.service.js';
import { priceEvent, PricingError } from '../pricing/pricing.js';
import { TokensService } from '../tokens/tokens.service.js';
import { UsageEventDto } from './dto/usage-event.dto.js';
import { DailyRollup, NewUsageRecord, UsageRecord, UsageRepository } from './usage.repository.js';

export type EventOutcome =
  | { kind: 'recorded'; record: UsageRecord; duplicate: boolean }
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

/**
 * Turns gateway events into usage records, ledger entries and balance changes. A list of
 * events (a batch, or single events that arrived together) is written in one transaction.
 */
@Injectable()
export class UsageService {
  private readonly logger = new Logger(UsageService.name);

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(UsageRepository) private readonly repo: UsageRepository,
    @Inject(LedgerService) private readonly ledger: LedgerService,
    @Inject(TokensService) private readonly tokens: TokensService,
    @Inject(CatalogService) private readonly catalog: CatalogService,
  ) {}

  async ingest(items: IncomingEvent[]): Promise<EventOutcome[]> {
    const out: (EventOutcome | undefined)[] = items.map(() => undefined);
    // The first event with a request id is the one processed; later copies in the same
    // list follow it (same body) or conflict with it (different body).
    const firstIndex = new Map<string, number>();
    const primaries: number[] = [];
    items.forEach((it, i) => {
      const first = firstIndex.get(it.event.requestId);
      if (first === undefined) {
        firstIndex.set(it.event.requestId, i);
        primaries.push(i);
      } else if (items[first].hash !== it.hash) {
        out[i] = conflictFor(it.event.requestId);
      }
    });

    const [contexts, prices] = await Promise.all([
      this.tokens.ratingContext([...new Set(primaries.map((i) => items[i].event.tokenId))]),
      this.catalog.currentPrices([...new Set(primaries.map((i) => items[i].event.model))]),
    ]);

    const records: { index: number; record: NewUsageRecord }[] = [];
    for (const i of primaries) {
      const { event, hash } = items[i];
      const ctx = contexts.get(event.tokenId);
      const price = prices.get(event.model);
      if (!ctx) {
        out[i] = {
          kind: 'rejected',
          requestId: event.requestId,
          error: notFound(`token ${event.tokenId}`),
        };
        continue;
      }
      if (!price) {
        out[i] = {
          kind: 'rejected',
          requestId: event.requestId,
          error: invalid('model', `model ${event.model} is not priced`),
        };
        continue;
      }
      try {
        const priced = priceEvent(event, price, ctx.ratio);
        records.push({
          index: i,
          record: {
            requestId: event.requestId,
            requestHash: hash,
            accountId: ctx.accountId,
            tokenId: ctx.tokenId,
            model: event.model,
            outcome: priced.outcome,
            reason: priced.outcome === 'skipped' ? priced.reason : null,
            // Stored at the ledger's scale; half-up where a price had more digits than that.
            charge: priced.charge.toDecimalPlaces(MONEY_SCALE, Decimal.ROUND_HALF_UP),
            group: ctx.group,
            ratio: ctx.ratio,
            priceVersionId: price.id,
            priceVersion: price.version,
            breakdown: priced.outcome === 'charged' ? priced.breakdown : [],
            event,
            occurredAt: event.occurredAt ? new Date(event.occurredAt) : new Date(),
          },
        });
      } catch (err) {
        if (!(err instanceof PricingError)) throw err;
        out[i] = {
          kind: 'rejected',
          requestId: event.requestId,
          error: invalid(err.field, err.message),
        };
      }
    }

    if (records.length > 0) {
      const written = await this.writeWithRetry(records.map((r) => r.record));
      records.forEach(({ index }, k) => (out[index] = written[k]));
    }

    // Copies inside the list take their first's outcome, as a duplicate.
    items.forEach((it, i) => {
      if (out[i]) return;
      const first = out[firstIndex.get(it.event.requestId) ?? i];
      out[i] = first?.kind === 'recorded' ? { ...first, duplicate: true } : first;
    });
    return out as EventOutcome[];
  }

  private async writeWithRetry(records: NewUsageRecord[]): Promise<EventOutcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.write(records);
      } catch (err) {
        const code =
          (err as { code?: string; driverError?: { code?: string } }).driverError?.code ??
          (err as { code?: string }).code;
        if (attempt >= MAX_ATTEMPTS || !code || !RETRYABLE.has(code)) throw err;
        this.logger.warn(`usage write retried after ${code} (attempt ${attempt})`);
      }
    }
  }

  /**
   * One transaction: new events, their ledger entries and balances, token spend, roll-ups.
   * The accounts are locked first, so everything is dated after the locks (one booking time
   * for events, entries and roll-ups) and an account's bookings are dated in chain order.
   * Locking before inserting cannot deadlock: a transaction waits on another's request id
   * only after it holds all its own locks, and the other never waits on it after that.
   */
  private write(records: NewUsageRecord[]): Promise<EventOutcome[]> {
    return this.ds.transaction(async (em) => {
      const booking = await this.ledger.lockAccounts(
        records.map((r) => r.accountId),
        em,
      );
      const inserted = await this.repo.insertNew(records, booking.bookedAt, em);
      const byId = new Map(inserted.map((r) => [r.requestId, r]));
      const missing = records.filter((r) => !byId.has(r.requestId)).map((r) => r.requestId);
      const stored = missing.length > 0 ? await this.repo.findByRequestIds(missing, em) : [];
      const storedById = new Map(stored.map((r) => [r.requestId, r]));

      // Every charged record gets exactly one ledger entry, even a zero one, so reconciliation is one-to-one.
      const charged = inserted.filter((r) => r.outcome === 'charged');
      await this.ledger.bookMany(
        charged.map((r) => ({
          accountId: r.accountId,
          type: 'usage' as const,
          amount: r.charge.neg(),
          description: `${r.model} request ${r.requestId}`,
          reference: r.requestId,
        })),
        booking,
        em,
      );
      const spend = new Map<string, Decimal>();
      for (const r of inserted) spend.set(r.tokenId, (spend.get(r.tokenId) ?? ZERO).plus(r.charge));
      if (spend.size > 0) await this.tokens.recordUse(spend, em);
      await this.repo.addToDailyRollups(rollupsOf(inserted, records), booking.bookedAt, em);

      return records.map((r): EventOutcome => {
        const mine = byId.get(r.requestId);
        if (mine) return { kind: 'recorded', record: mine, duplicate: false };
        const prior = storedById.get(r.requestId);
        if (!prior) throw new Error(`request ${r.requestId} neither inserted nor stored`);
        if (prior.requestHash !== r.requestHash) return conflictFor(r.requestId);
        return { kind: 'recorded', record: prior, duplicate: true };
      });
    });
  }
}

/** Per account and model: what this transaction adds to today's roll-up. */
function rollupsOf(inserted: UsageRecord[], records: NewUsageRecord[]): DailyRollup[] {
  const events = new Map(records.map((r) => [r.requestId, r.event as UsageEventDto]));
  const out = new Map<string, DailyRollup>();
  for (const r of inserted) {
    const key = `${r.accountId}\u0000${r.model}`;
    const acc =
      out.get(key) ??
      ({
        accountId: r.accountId,
        model: r.model,
        requests: 0,
        charged: 0,
        skipped: 0,
        inputTokens: 0,
        outputTokens: 0,
        images: 0,
        charge: ZERO,
      } satisfies DailyRollup);
    const e = events.get(r.requestId);
    acc.requests += 1;
    if (r.outcome === 'charged') {
      acc.charged += 1;
      acc.images += e?.images ?? 1;
    } else {
      acc.skipped += 1;
    }
    acc.inputTokens += e?.usage?.inputTokens ?? 0;
    acc.outputTokens += e?.usage?.outputTokens ?? 0;
    acc.charge = acc.charge.plus(r.charge);
    out.set(key, acc);
  }
  return [...out.values()];
}

function conflictFor(requestId: string): EventOutcome {
  return {
    kind: 'rejected',
    requestId,
    error: new DomainError(
      'conflict',
      `requestId ${requestId} was already recorded with a different body`,
    ),
  };
}
