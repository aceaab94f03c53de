import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';
import type { BreakdownLine, StoredQuantities } from '../pricing/pricing.js';
import type { UsageReason } from '../usage/usage.repository.js';
import type { Outcome, SummaryGroup } from './dto/usage-view.dto.js';
import type { SummaryPlan } from './time-range.js';

export interface UsageFilter {
  accountId: string;
  from: string | null;
  to: string | null;
  model: string | null;
  tokenId: string | null;
  outcome: Outcome | null;
}

/** Keyset position in the usage list: recorded_at (UTC, microseconds) and id. */
export interface UsageCursor {
  recordedAt: string;
  id: string;
}

/** An event as read; its breakdown is rebuilt from its price version (UsageViewsService). */
export interface UsageItemRead {
  id: string;
  requestId: string;
  tokenId: string;
  tokenName: string;
  model: string;
  outcome: Outcome;
  reason: UsageReason | null;
  charge: Decimal;
  group: string;
  ratio: Decimal;
  priceVersionId: string;
  priceVersion: number;
  quantities: StoredQuantities;
  inputTokens: number;
  outputTokens: number;
  images: number;
  occurredAt: Date;
  recordedAt: Date;
  /** recorded_at with its microseconds, for the cursor. */
  cursorAt: string;
}

/** An event as shown: with the breakdown rebuilt from its price version. */
export interface UsageItem extends UsageItemRead {
  breakdown: BreakdownLine[];
}

interface UsageItemRow {
  id: string;
  request_id: string;
  token_id: string;
  token_name: string;
  model: string;
  outcome: Outcome;
  reason: UsageReason | null;
  charge: string;
  group_name: string;
  ratio: string;
  price_version_id: string;
  price_version: number;
  lines: string[] | null;
  input_tokens: string;
  output_tokens: string;
  images: string;
  stored_images: number;
  occurred_at: Date;
  recorded_at: Date;
  cursor_at: string;
}

const toUsageItem = (r: UsageItemRow): UsageItemRead => ({
  id: r.id,
  requestId: r.request_id,
  tokenId: r.token_id,
  tokenName: r.token_name,
  model: r.model,
  outcome: r.outcome,
  reason: r.reason,
  charge: money(r.charge),
  group: r.group_name,
  ratio: money(r.ratio),
  priceVersionId: r.price_version_id,
  priceVersion: r.price_version,
  quantities: {
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    images: r.stored_images,
    lines: r.lines,
  },
  inputTokens: Number(r.input_tokens),
  outputTokens: Number(r.output_tokens),
  images: Number(r.images),
  occurredAt: r.occurred_at,
  recordedAt: r.recorded_at,
  cursorAt: r.cursor_at,
});

export interface UsageTotals {
  requests: number;
  charged: number;
  skipped: number;
  review: number;
  inputTokens: number;
  outputTokens: number;
  images: number;
  charge: Decimal;
}

interface TotalsRow {
  key: string;
  requests: string;
  charged: string;
  skipped: string;
  review: string;
  input_tokens: string;
  output_tokens: string;
  images: string;
  charge: string;
}

/**
 * What one event adds to the daily roll-ups, from the counts stored with it (pricing/counts.ts):
 * tokens of every event, images of charged events only. Summaries over partial days use it,
 * so both paths count alike.
 */
const EVENT_METRICS = `e.input_tokens, e.output_tokens,
  CASE WHEN e.outcome = 'charged' THEN e.images ELSE 0 END AS images`;

/** What a customer was charged for an event: review and voided events book nothing. */
const BOOKED_CHARGE = `CASE WHEN e.outcome IN ('review', 'voided') THEN 0 ELSE e.charge END`;

/**
 * An event's lines in the roll-ups' terms: on its arrival day it counts as a request (as
 * charged, skipped or review); an approved review adds its charge, images and a charged
 * count on the day it was approved (reviewed_at), the day its ledger entry is dated.
 */
export const eventRollupLines = (where: (col: string) => string): string => `
  SELECT e.model, (e.recorded_at AT TIME ZONE 'UTC')::date AS day, 1::bigint AS requests,
         (e.outcome = 'charged' AND e.reviewed_at IS NULL)::int::bigint AS charged,
         (e.outcome = 'skipped')::int::bigint AS skipped,
         (e.outcome IN ('review', 'voided') OR e.reviewed_at IS NOT NULL)::int::bigint AS review,
         e.input_tokens, e.output_tokens,
         CASE WHEN e.outcome = 'charged' AND e.reviewed_at IS NULL THEN e.images ELSE 0 END AS images,
         CASE WHEN e.outcome = 'charged' AND e.reviewed_at IS NULL THEN e.charge ELSE 0 END AS charge
  FROM usage_events e WHERE ${where('e.recorded_at')}
  UNION ALL
  SELECT e.model, (e.reviewed_at AT TIME ZONE 'UTC')::date, 0, 1, 0, 0, 0, 0, e.images, e.charge
  FROM usage_events e WHERE e.outcome = 'charged' AND e.reviewed_at IS NOT NULL AND ${where('e.reviewed_at')}`;

/** Collects positional parameters for a query assembled from optional conditions. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

@Injectable()
export class UsageViewsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Newest first by (recorded_at, id), `limit` rows after the cursor: a keyset read down the
   * index usage_events (account_id, recorded_at DESC, id DESC), never an OFFSET.
   */
  async list(
    filter: UsageFilter,
    after: UsageCursor | null,
    limit: number,
  ): Promise<UsageItemRead[]> {
    const p = new Params();
    const where = [`e.account_id = ${p.add(filter.accountId, 'uuid')}`];
    if (filter.from !== null) where.push(`e.recorded_at >= ${p.add(filter.from, 'timestamptz')}`);
    if (filter.to !== null) where.push(`e.recorded_at < ${p.add(filter.to, 'timestamptz')}`);
    if (filter.model !== null) where.push(`e.model = ${p.add(filter.model, 'varchar')}`);
    if (filter.tokenId !== null) where.push(`e.token_id = ${p.add(filter.tokenId, 'uuid')}`);
    if (filter.outcome !== null) where.push(`e.outcome = ${p.add(filter.outcome, 'varchar')}`);
    if (after) {
      where.push(
        `(e.recorded_at, e.id) < (${p.add(after.recordedAt, 'timestamptz')}, ${p.add(after.id, 'bigint')})`,
      );
    }
    const rows = await sqlRows<UsageItemRow>(
      this.ds,
      `SELECT e.id, e.request_id, e.token_id, t.name AS token_name, e.model, e.outcome, e.reason, ${BOOKED_CHARGE} AS charge,
              e.group_name, e.ratio, e.price_version_id, e.price_version, e.lines::text[] AS lines,
              e.images AS stored_images, ${EVENT_METRICS},
              e.occurred_at, e.recorded_at,
              to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
       FROM usage_events e JOIN api_tokens t ON t.id = e.token_id
       WHERE ${where.join(' AND ')}
       ORDER BY e.recorded_at DESC, e.id DESC
       LIMIT ${p.add(limit, 'int')}`,
      p.values,
    );
    return rows.map(toUsageItem);
  }

  /**
   * Totals per model or per UTC day: whole days from usage_daily, the partial days at the ends
   * of the range from usage_events, in one statement (one snapshot).
   */
  async summary(
    accountId: string,
    plan: SummaryPlan,
    groupBy: SummaryGroup,
  ): Promise<(UsageTotals & { key: string })[]> {
    const p = new Params();
    const account = p.add(accountId, 'uuid');
    const parts: string[] = [];
    if (plan.daily) {
      const where = [`d.account_id = ${account}`];
      if (plan.daily.fromDay !== null) where.push(`d.day >= ${p.add(plan.daily.fromDay, 'date')}`);
      if (plan.daily.toDay !== null) where.push(`d.day < ${p.add(plan.daily.toDay, 'date')}`);
      parts.push(
        `SELECT d.model, d.day, d.requests, d.charged, d.skipped, d.review, d.input_tokens, d.output_tokens, d.images,
                d.charge
         FROM usage_daily d WHERE ${where.join(' AND ')}`,
      );
    }
    if (plan.events.length > 0) {
      const ranges = (col: string): string =>
        plan.events
          .map(
            (r) =>
              `(${col} >= ${p.add(r.from, 'timestamptz')} AND ${col} < ${p.add(r.to, 'timestamptz')})`,
          )
          .join(' OR ');
      parts.push(eventRollupLines((col) => `e.account_id = ${account} AND (${ranges(col)})`));
    }
    if (parts.length === 0) return [];
    const key = groupBy === 'model' ? 'model' : `to_char(day, 'YYYY-MM-DD')`;
    const rows = await sqlRows<TotalsRow>(
      this.ds,
      `SELECT ${key} AS key, sum(requests) AS requests, sum(charged) AS charged, sum(skipped) AS skipped,
              sum(review) AS review, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(images) AS images,
              sum(charge) AS charge
       FROM (${parts.join(' UNION ALL ')}) u
       GROUP BY 1 ORDER BY 1`,
      p.values,
    );
    return rows.map((r) => ({
      key: r.key,
      requests: Number(r.requests),
      charged: Number(r.charged),
      skipped: Number(r.skipped),
      review: Number(r.review),
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      images: Number(r.images),
      charge: money(r.charge),
    }));
  }
}
