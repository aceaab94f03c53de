import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';
import type { Booking } from '../ledger/ledger.types.js';
import type { UsageCounts } from '../pricing/counts.js';
import type { BreakdownLine, SkipReason } from '../pricing/pricing.js';

/** charged: booked; skipped: not billable; review: priced above the version's reviewAbove, not booked; voided: a review an admin refused. */
export type UsageOutcome = 'charged' | 'skipped' | 'review' | 'voided';
export type UsageReason = SkipReason | 'above_review_limit';

export interface NewUsageRecord {
  requestId: string;
  requestHash: string;
  accountId: string;
  tokenId: string;
  model: string;
  outcome: 'charged' | 'skipped' | 'review';
  reason: UsageReason | null;
  /** For a review, the charge an approval would book. */
  charge: Decimal;
  group: string;
  ratio: Decimal;
  priceVersionId: string;
  priceVersion: number;
  breakdown: BreakdownLine[];
  /** From pricing/counts.ts: the one rule for what an event counts. */
  counts: UsageCounts;
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
  outcome: UsageOutcome;
  reason: UsageReason | null;
  /** As priced; for review and voided events, what was not booked. */
  charge: Decimal;
  group: string;
  ratio: Decimal;
  priceVersion: number;
  breakdown: BreakdownLine[];
  occurredAt: Date;
  recordedAt: Date;
  /** When an admin approved or voided it; null otherwise. */
  reviewedAt: Date | null;
}

interface UsageRow {
  id: string;
  request_id: string;
  request_hash: string;
  account_id: string;
  token_id: string;
  model: string;
  outcome: UsageOutcome;
  reason: UsageReason | null;
  charge: string;
  group_name: string;
  ratio: string;
  price_version: number;
  breakdown: BreakdownLine[];
  occurred_at: Date;
  recorded_at: Date;
  reviewed_at: Date | null;
}

export const USAGE_COLUMNS = `id, request_id, request_hash, account_id, token_id, model, outcome, reason, charge, group_name, ratio,
  price_version, breakdown, occurred_at, recorded_at, reviewed_at`;
const COLUMNS = USAGE_COLUMNS;

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
  reviewedAt: r.reviewed_at,
});

@Injectable()
export class UsageRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Locks the accounts behind `tokenIds` (in account id order, so concurrent ingestions
   * cannot deadlock) and reads what pricing needs: each token's account, group and current
   * group ratio, the accounts' balances, and a booking time read after the locks.
   */
  async lockForUsage(
    tokenIds: string[],
    em: EntityManager,
  ): Promise<{ contexts: Map<string, UsageContext>; booking: Booking }> {
    const rows = await sqlRows<{
      token_id: string;
      account_id: string;
      group_name: string;
      ratio: string;
      balance: string;
      at: string;
    }>(
      em,
      `SELECT l.token_id, l.account_id, l.group_name, l.ratio::text AS ratio, l.balance::text AS balance,
              clock_timestamp()::text AS at
       FROM (SELECT t.id AS token_id, t.account_id, t.group_name, g.ratio, a.balance
             FROM api_tokens t JOIN groups g ON g.name = t.group_name JOIN accounts a ON a.id = t.account_id
             WHERE t.id = ANY($1::uuid[])
             ORDER BY a.id FOR NO KEY UPDATE OF a) l`,
      [tokenIds],
      'usage_lock_for_usage',
    );
    const contexts = new Map<string, UsageContext>();
    const balances = new Map<string, Decimal>();
    let bookedAt = '';
    for (const r of rows) {
      contexts.set(r.token_id, {
        tokenId: r.token_id,
        accountId: r.account_id,
        group: r.group_name,
        ratio: money(r.ratio),
      });
      balances.set(r.account_id, money(r.balance));
      // Read as each row leaves its lock: the latest is after every lock was taken.
      if (r.at > bookedAt) bookedAt = r.at;
    }
    if (!bookedAt)
      bookedAt = (await sqlRows<{ at: string }>(em, `SELECT clock_timestamp()::text AS at`))[0].at;
    return { contexts, booking: { balances, bookedAt } };
  }

  /**
   * Inserts every record whose request id is new, and in the same statement adds what the
   * new ones spent to their tokens and to today's per-model roll-ups. A request id another
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
      `WITH ins AS (
         INSERT INTO usage_events (request_id, request_hash, account_id, token_id, model, outcome, reason, charge,
           group_name, ratio, price_version_id, price_version, breakdown, event, occurred_at, input_tokens,
           output_tokens, images, recorded_at)
         SELECT v.*, $16::timestamptz FROM unnest($1::varchar[], $2::char(64)[], $3::uuid[], $4::uuid[], $5::varchar[],
           $6::varchar[], $7::varchar[], $8::numeric[], $9::varchar[], $10::numeric[], $11::bigint[], $12::int[],
           $13::jsonb[], $14::jsonb[], $15::timestamptz[], $17::bigint[], $18::bigint[], $19::int[]) AS v
         ON CONFLICT (request_id) DO NOTHING
         RETURNING ${COLUMNS}, input_tokens, output_tokens, images
       ), settled AS (
         -- The event settles its own hold (same request id, token and account) in the
         -- transaction that books it; the account is locked, so nobody else moves the hold.
         UPDATE holds h SET status = CASE WHEN h.expires_at <= $16::timestamptz THEN 'expired' ELSE 'settled' END,
                closed_at = $16::timestamptz
         FROM ins WHERE h.request_id = ins.request_id AND h.token_id = ins.token_id AND h.account_id = ins.account_id
           AND h.status = 'active'
         RETURNING h.account_id, h.token_id, h.amount
       ), unheld AS (
         UPDATE accounts a SET held = a.held - x.amount
         FROM (SELECT account_id, SUM(amount) AS amount FROM settled GROUP BY account_id) x WHERE a.id = x.account_id
       ), spend AS (
         -- The tokens' accounts are locked by this transaction, so nobody else updates them.
         UPDATE api_tokens t SET spent = t.spent + s.amount, held = t.held - COALESCE(x.amount, 0),
                last_used_at = $16::timestamptz
         FROM (SELECT token_id, COALESCE(SUM(charge) FILTER (WHERE outcome = 'charged'), 0) AS amount FROM ins GROUP BY token_id) s
         LEFT JOIN (SELECT token_id, SUM(amount) AS amount FROM settled GROUP BY token_id) x ON x.token_id = s.token_id
         WHERE t.id = s.token_id
       ), daily AS (
         INSERT INTO usage_daily AS d (account_id, day, model, requests, charged, skipped, review, input_tokens,
           output_tokens, images, charge)
         SELECT account_id, ($16::timestamptz AT TIME ZONE 'UTC')::date, model, COUNT(*),
                COUNT(*) FILTER (WHERE outcome = 'charged'), COUNT(*) FILTER (WHERE outcome = 'skipped'),
                COUNT(*) FILTER (WHERE outcome = 'review'),
                SUM(input_tokens), SUM(output_tokens), COALESCE(SUM(images) FILTER (WHERE outcome = 'charged'), 0),
                COALESCE(SUM(charge) FILTER (WHERE outcome = 'charged'), 0)
         FROM ins GROUP BY account_id, model
         ON CONFLICT (account_id, day, model) DO UPDATE SET
           requests = d.requests + EXCLUDED.requests,
           charged = d.charged + EXCLUDED.charged,
           skipped = d.skipped + EXCLUDED.skipped,
           review = d.review + EXCLUDED.review,
           input_tokens = d.input_tokens + EXCLUDED.input_tokens,
           output_tokens = d.output_tokens + EXCLUDED.output_tokens,
           images = d.images + EXCLUDED.images,
           charge = d.charge + EXCLUDED.charge
       )
       SELECT ${COLUMNS} FROM ins`,
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
        records.map((r) => r.counts.inputTokens),
        records.map((r) => r.counts.outputTokens),
        records.map((r) => r.counts.images),
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
}

export interface UsageContext {
  tokenId: string;
  accountId: string;
  group: string;
  ratio: Decimal;
}
