import { Inject, Injectable, StreamableFile } from '@nestjs/common';
import { Readable } from 'node:stream';
import { AccountsService } from '../accounts/accounts.service.js';
import type { CatalogPrice } from '../catalog/catalog.repository.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { breakdownOf } from '../pricing/pricing.js';
import { invalid } from '../common/errors/domain-error.js';
import { ZERO } from '../common/money/money.js';
import {
  decodeCursor,
  DEFAULT_LIMIT,
  encodeCursor,
  Page,
} from '../common/pagination/pagination.js';
import type {
  UsageExportQueryDto,
  UsageItemDto,
  UsageQueryDto,
  UsageSummaryDto,
  UsageSummaryQueryDto,
} from './dto/usage-view.dto.js';
import {
  toUsageCsvLine,
  toUsageItemDto,
  toUsageTotalsDto,
  USAGE_CSV_HEADER,
} from './statements.mapper.js';
import { parseInstant, parseRange, planSummary } from './time-range.js';
import {
  UsageCursor,
  UsageFilter,
  UsageItem,
  UsageTotals,
  UsageViewsRepository,
} from './usage-views.repository.js';

/** Rows per keyset read while streaming an export: memory stays flat whatever the range. */
const EXPORT_BATCH = 1000;
/** Bytes the export buffers ahead of a slow client before it stops reading the database. */
const EXPORT_BUFFER = 64 * 1024;
const EVENT_ID = /^\d{1,18}$/;

/** The customer's usage: the event list, its CSV export and summaries. */
@Injectable()
export class UsageViewsService {
  constructor(
    @Inject(UsageViewsRepository) private readonly repo: UsageViewsRepository,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(CatalogService) private readonly catalog: CatalogService,
  ) {}

  /** A keyset read with each event's breakdown rebuilt from its (immutable) price version. */
  private async read(
    filter: UsageFilter,
    after: UsageCursor | null,
    limit: number,
  ): Promise<UsageItem[]> {
    const rows = await this.repo.list(filter, after, limit);
    if (rows.length === 0) return [];
    const prices = await this.catalog.versionsById(rows.map((r) => r.priceVersionId));
    return rows.map((r) => ({
      ...r,
      breakdown: breakdownOf(prices.get(r.priceVersionId) as CatalogPrice, r.outcome, r.quantities),
    }));
  }

  async list(accountId: string, q: UsageQueryDto): Promise<Page<UsageItemDto>> {
    await this.accounts.get(accountId);
    const filter = toFilter(accountId, q);
    const limit = q.limit ?? DEFAULT_LIMIT;
    const rows = await this.read(filter, decodeUsageCursor(q.cursor), limit + 1);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return {
      data: page.map(toUsageItemDto),
      nextCursor: more && last ? encodeUsageCursor(last) : null,
    };
  }

  /**
   * The same events as CSV, newest first, streamed in keyset batches: the next batch is read
   * only when the client has taken the previous one, so nothing is built in memory and a client
   * that goes away stops the reads. The first batch is read before answering, so a failure
   * there is still a proper error response.
   */
  async exportCsv(accountId: string, q: UsageExportQueryDto): Promise<StreamableFile> {
    await this.accounts.get(accountId);
    const filter = toFilter(accountId, q);
    const first = await this.read(filter, null, EXPORT_BATCH);
    const read = this.read.bind(this);
    async function* lines(): AsyncGenerator<string> {
      yield USAGE_CSV_HEADER;
      let batch = first;
      while (batch.length > 0) {
        yield batch.map(toUsageCsvLine).join('');
        if (batch.length < EXPORT_BATCH) return;
        const last = batch[batch.length - 1];
        batch = await read(filter, { recordedAt: last.cursorAt, id: last.id }, EXPORT_BATCH);
      }
    }
    const stream = Readable.from(lines(), { objectMode: false, highWaterMark: EXPORT_BUFFER });
    return new StreamableFile(stream, {
      type: 'text/csv; charset=utf-8',
      disposition: `attachment; filename="usage-${accountId}.csv"`,
    });
  }

  /** Totals by model or by UTC day, and over the whole range. */
  async summary(accountId: string, q: UsageSummaryQueryDto): Promise<UsageSummaryDto> {
    await this.accounts.get(accountId);
    const range = parseRange(q.from, q.to);
    const groupBy = q.groupBy ?? 'model';
    const rows = await this.repo.summary(accountId, planSummary(range.from, range.to), groupBy);
    const totals = rows.reduce<UsageTotals>(
      (t, r) => ({
        requests: t.requests + r.requests,
        charged: t.charged + r.charged,
        skipped: t.skipped + r.skipped,
        review: t.review + r.review,
        inputTokens: t.inputTokens + r.inputTokens,
        outputTokens: t.outputTokens + r.outputTokens,
        images: t.images + r.images,
        charge: t.charge.plus(r.charge),
      }),
      {
        requests: 0,
        charged: 0,
        skipped: 0,
        review: 0,
        inputTokens: 0,
        outputTokens: 0,
        images: 0,
        charge: ZERO,
      },
    );
    return {
      groupBy,
      from: range.from?.iso ?? null,
      to: range.to?.iso ?? null,
      rows: rows.map((r) => ({ key: r.key, ...toUsageTotalsDto(r) })),
      totals: toUsageTotalsDto(totals),
    };
  }
}

function toFilter(accountId: string, q: UsageExportQueryDto): UsageFilter {
  const range = parseRange(q.from, q.to);
  return {
    accountId,
    from: range.from?.iso ?? null,
    to: range.to?.iso ?? null,
    model: q.model ?? null,
    tokenId: q.tokenId ?? null,
    outcome: q.outcome ?? null,
  };
}

const encodeUsageCursor = (u: UsageItem): string => encodeCursor([u.cursorAt, u.id]);

function decodeUsageCursor(cursor: string | undefined): UsageCursor | null {
  const key = decodeCursor(cursor, ['text', 'int']);
  if (!key) return null;
  const at = parseInstant(key[0]);
  if (!at || !EVENT_ID.test(key[1])) throw invalid('cursor', 'is not a cursor this list returned');
  return { recordedAt: at.iso, id: key[1] };
}
