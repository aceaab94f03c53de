import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';
import type { BreakdownLine, SkipReason } from '../pricing/pricing.js';

export interface NewUsageRecord {
  requestId: string;
  requestHash: string;
  accountId: string;
  tokenId: string;
  model: string;
  outcome: 'charged' | 'skipped';
  reason: SkipReason | null;
  charge: Decimal;
  group: string;
  ratio: Decimal;
  priceVersionId: string;
  priceVersion: number;
  breakdown: BreakdownLine[];
  event: unknown;
  occurredAt: Date;
}

export interface UsageRecord {
  id: string;
  requestId: string;
  requestHash: string;
  accountId: string;
  tokenId: string;
  model: string;
  outcome: 'charged' | 'skipped';
  reason: SkipReason | null;
  charge: Decimal;
  group: string;
  ratio: Decimal;
  priceVersion: number;
  breakdown: BreakdownLine[];
  occurredAt: Date;
  recordedAt: Date;
}

interface UsageRow {
  id: string;
  request_id: string;
  request_hash: string;
  account_id: string;
  token_id: string;
  model: string;
  outcome: 'charged' | 'skipped';
  reason: SkipReason | null;
  charge: string;
  group_name: string;
  ratio: string;
  price_version: number;
  breakdown: BreakdownLine[];
  occurred_at: Date;
  recorded_at: Date;
}

const COLUMNS = `id, request_id, request_hash, account_id, token_id, model, outcome, reason, charge, group_name, ratio,
  price_version, breakdown, occurred_at, recorded_at`;

export const toUsageRecord = (r: UsageRow): UsageRecord => ({
  id: r.id,
  requestId: r.request_id,
  requestHash: r.request_hash,
  accountId: r.account_id,
  tokenId: r.token_id,
  model: r.model,
  outcome: r.outcome,
  reason: r.reason,
  charge: money(r.charge),
  group: r.group_name,
  ratio: money(r.ratio),
  priceVersion: r.price_version,
  breakdown: r.breakdown,
  occurredAt: r.occurred_at,
  recordedAt: r.recorded_at,
});

@Injectable()
export class UsageRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Inserts every record whose request id is new, in one statement. A request id another
   * transaction is inserting right now makes this wait for it, then skips it: the unique
   * key, not a check in code, decides which delivery is the one that counts.
   */
  async insertNew(
    records: NewUsageRecord[],
    recordedAt: string,
    em: EntityManager,
  ): Promise<UsageRecord[]> {
    const rows = await sqlRows<UsageRow>(
      em,
      `INSERT INTO usage_events (request_id, request_hash, account_id, token_id, model, outcome, reason, charge,
         group_name, ratio, price_version_id, price_version, breakdown, event, occurred_at, recorded_at)
       SELECT v.*, $16::timestamptz FROM unnest($1::varchar[], $2::char(64)[], $3::uuid[], $4::uuid[], $5::varchar[], $6::varchar[],
         $7::varchar[], $8::numeric[], $9::varchar[], $10::numeric[], $11::bigint[], $12::int[], $13::jsonb[],
         $14::jsonb[], $15::timestamptz[]) AS v
       ON CONFLICT (request_id) DO NOTHING
       RETURNING ${COLUMNS}`,
      [
        records.map((r) => r.requestId),
        records.map((r) => r.requestHash),
        records.map((r) => r.accountId),
        records.map((r) => r.tokenId),
        records.map((r) => r.model),
        records.map((r) => r.outcome),
        records.map((r) => r.reason),
        records.map((r) => r.charge.toFixed()),
        records.map((r) => r.group),
        records.map((r) => r.ratio.toFixed()),
        records.map((r) => r.priceVersionId),
        records.map((r) => r.priceVersion),
        records.map((r) => JSON.stringify(r.breakdown)),
        records.map((r) => JSON.stringify(r.event)),
        records.map((r) => r.occurredAt.toISOString()),
        recordedAt,
      ],
      'usage_insert_new',
    );
    return rows.map(toUsageRecord);
  }

  async findByRequestIds(
    requestIds: string[],
    em: EntityManager = this.ds.manager,
  ): Promise<UsageRecord[]> {
    const rows = await sqlRows<UsageRow>(
      em,
      `SELECT ${COLUMNS} FROM usage_events WHERE request_id = ANY($1::varchar[])`,
      [requestIds],
    );
    return rows.map(toUsageRecord);
  }

  /**
   * Adds this transaction's new events to the per-day, per-model roll-ups that statements
   * read. Same transaction and same booking time as the ledger entries, so they always agree.
   */
  async addToDailyRollups(
    rollups: DailyRollup[],
    bookedAt: string,
    em: EntityManager,
  ): Promise<void> {
    if (rollups.length === 0) return;
    await sqlRows(
      em,
      `INSERT INTO usage_daily AS d (account_id, day, model, requests, charged, skipped, input_tokens, output_tokens,
         images, charge)
       SELECT v.account_id, ($10::timestamptz AT TIME ZONE 'UTC')::date, v.model, v.requests, v.charged, v.skipped,
              v.input_tokens, v.output_tokens, v.images, v.charge
       FROM unnest($1::uuid[], $2::varchar[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                   $8::bigint[], $9::numeric[])
         AS v(account_id, model, requests, charged, skipped, input_tokens, output_tokens, images, charge)
       ORDER BY v.account_id, v.model
       ON CONFLICT (account_id, day, model) DO UPDATE SET
         requests = d.requests + EXCLUDED.requests,
         charged = d.charged + EXCLUDED.charged,
         skipped = d.skipped + EXCLUDED.skipped,
         input_tokens = d.input_tokens + EXCLUDED.input_tokens,
         output_tokens = d.output_tokens + EXCLUDED.output_tokens,
         images = d.images + EXCLUDED.images,
         charge = d.charge + EXCLUDED.charge`,
      [
        rollups.map((r) => r.accountId),
        rollups.map((r) => r.model),
        rollups.map((r) => String(r.requests)),
        rollups.map((r) => String(r.charged)),
        rollups.map((r) => String(r.skipped)),
        rollups.map((r) => String(r.inputTokens)),
        rollups.map((r) => String(r.outputTokens)),
        rollups.map((r) => String(r.images)),
        rollups.map((r) => r.charge.toFixed()),
        bookedAt,
      ],
      'usage_daily_add',
    );
  }
}

export interface DailyRollup {
  accountId: string;
  model: string;
  requests: number;
  charged: number;
  skipped: number;
  inputTokens: number;
  outputTokens: number;
  images: number;
  charge: Decimal;
}
