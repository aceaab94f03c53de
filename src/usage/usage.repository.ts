import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';
import type { Booking } from '../ledger/ledger.types.js';
import type { UsageCounts } from '../pricing/counts.js';
import type { BreakdownLine, SkipReason, StoredQuantities } from '../pricing/pricing.js';

/** charged: booked; skipped: not billable; review: priced above the version's reviewAbove, not booked; voided: a review an admin refused. */
export type UsageOutcome = 'charged' | 'skipped' | 'review' | 'voided';
export type UsageReason = SkipReason | 'above_review_limit';

export interface NewUsageRecord {
  requestId: string;
  /** The body's fingerprint (hex SHA-256; the first 8 bytes are stored). */
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
  /** Token lines unless they are the default split (pricing storedLines). */
  lines: string[] | null;
  occurredAt: Date;
}

/** A usage event as stored: everything but its breakdown, which is rebuilt from its price version. */
export interface StoredUsage {
  id: string;
  requestId: string;
  /** The stored fingerprint: hex of the first 8 bytes of the body's SHA-256. */
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
  priceVersionId: string;
  priceVersion: number;
  quantities: StoredQuantities;
  occurredAt: Date;
  recordedAt: Date;
  /** When an admin approved or voided it; null otherwise. */
  reviewedAt: Date | null;
}

export interface UsageRecord extends StoredUsage {
  breakdown: BreakdownLine[];
}

/**
 * A request id whose event was in a month that retention dropped: the register keeps that it
 * was recorded, with which body, when, how it ended and what it charged; nothing else.
 */
export interface ArchivedUsage {
  requestId: string;
  requestHash: string;
  accountId: string;
  outcome: UsageOutcome;
  charge: Decimal;
  recordedAt: Date;
}

/** The stored fingerprint of a body's hex SHA-256: its first 8 bytes (a bigint in the register). */
export const storedHash = (hash: string): string => hash.slice(0, 16);

/** SQL for the stored fingerprint of register row `r`, as storedHash gives it (16 hex digits). */
export const FINGERPRINT_HEX = `lpad(to_hex(r.fingerprint), 16, '0')`;

/** A usage_events row as USAGE_COLUMNS reads it. */
export interface UsageRow {
  id: string;
  request_id: string;
  account_id: string;
  token_id: string;
  model: string;
  outcome: UsageOutcome;
  reason: UsageReason | null;
  charge: string;
  group_name: string;
  ratio: string;
  price_version_id: string;
  price_version: number;
  input_tokens: string;
  output_tokens: string;
  images: number;
  lines: string[] | null;
  occurred_at: Date;
  recorded_at: Date;
  reviewed_at: Date | null;
}

/** The columns behind StoredUsage, for `usage_events e` (the fingerprint comes from the register). */
export const USAGE_COLUMNS = `e.id, e.request_id, e.account_id, e.token_id, e.model, e.outcome, e.reason, e.charge,
  e.group_name, e.ratio, e.price_version_id, e.price_version, e.input_tokens, e.output_tokens, e.images,
  e.lines::text[] AS lines, e.occurred_at, e.recorded_at, e.reviewed_at`;

export const toStoredUsage = (r: UsageRow, requestHash: string): StoredUsage => ({
  id: r.id,
  requestId: r.request_id,
  requestHash,
  accountId: r.account_id,
  tokenId: r.token_id,
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
    images: r.images,
    lines: r.lines,
  },
  occurredAt: r.occurred_at,
  recordedAt: r.recorded_at,
  reviewedAt: r.reviewed_at,
});

/**
 * The records as the ingestion statements take them, one array per column: request id,
 * stored fingerprint, account, token, model, outcome, reason, charge, group, ratio, price
 * version id and number, occurred at, input and output tokens, images, token lines.
 */
const recordColumns = (records: NewUsageRecord[]): unknown[][] => [
  records.map((r) => r.requestId),
  records.map((r) => storedHash(r.requestHash)),
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
  records.map((r) => r.occurredAt.toISOString()),
  records.map((r) => r.counts.inputTokens),
  records.map((r) => r.counts.outputTokens),
  records.map((r) => r.counts.images),
  records.map((r) => (r.lines ? `{${r.lines.join(',')}}` : null)),
];

@Injectable()
export class UsageRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Locks the accounts behind `tokenIds` (in account id order, so concurrent ingestions
   * cannot deadlock) and reads what pricing needs: each token's account, group and current
   * group ratio, the accounts' balances, and a booking time read after the locks. The tokens
   * are joined from their distinct ids, not matched by `= ANY (array)`: a row that another
   * transaction updated while this one waited is rechecked alone, not by sorting the whole
   * array again (migration 1764870000000 says the same of usage_book).
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
             FROM (SELECT DISTINCT x.id FROM unnest($1::uuid[]) AS x(id)) x
             JOIN api_tokens t ON t.id = x.id JOIN groups g ON g.name = t.group_name
             JOIN accounts a ON a.id = t.account_id
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
   * Registers every record whose request id is new and inserts its event, and in the same
   * statement settles its hold and adds what the new ones spent to their tokens and to
   * today's per-model roll-ups. A request id another transaction is registering right now
   * makes this wait for it, then skips it: the register's key, not a check in code, decides
   * which delivery is the one that counts (for ever: the register outlives its events' month).
   */
  async insertNew(
    records: NewUsageRecord[],
    recordedAt: string,
    em: EntityManager,
  ): Promise<StoredUsage[]> {
    const columns = recordColumns(records);
    const rows = await sqlRows<UsageRow & { fingerprint: string }>(
      em,
      `WITH v AS (
         SELECT * FROM unnest($1::varchar[], $2::text[], $3::uuid[], $4::uuid[], $5::varchar[], $6::varchar[],
           $7::varchar[], $8::numeric[], $9::varchar[], $10::numeric[], $11::bigint[], $12::int[],
           $13::timestamptz[], $15::bigint[], $16::bigint[], $17::int[], $18::text[])
           AS v(request_id, fingerprint, account_id, token_id, model, outcome, reason, charge, group_name, ratio,
                price_version_id, price_version, occurred_at, input_tokens, output_tokens, images, lines)
       ), registered AS (
         INSERT INTO usage_requests (key, fingerprint, account_id, recorded_at, outcome, charge)
         SELECT usage_request_key(v.request_id), ('x' || v.fingerprint)::bit(64)::bigint, v.account_id,
                $14::timestamptz, v.outcome::"char", v.charge
         FROM v
         ON CONFLICT (key) DO NOTHING
         RETURNING key
       ), ins AS (
         INSERT INTO usage_events AS e (request_id, account_id, token_id, model, outcome, reason, charge, group_name, ratio,
           price_version_id, price_version, occurred_at, input_tokens, output_tokens, images, lines, recorded_at)
         SELECT v.request_id, v.account_id, v.token_id, v.model, v.outcome, v.reason, v.charge, v.group_name, v.ratio,
                v.price_version_id, v.price_version, v.occurred_at, v.input_tokens, v.output_tokens, v.images,
                v.lines::bigint[], $14::timestamptz
         FROM v JOIN registered r ON r.key = usage_request_key(v.request_id)
         RETURNING ${USAGE_COLUMNS}
       ), settled AS (
         -- The event settles its own hold (same request id, token and account) in the
         -- transaction that books it; the account is locked, so nobody else moves the hold.
         -- holds_settle_usage looks each one up by its request id, whatever the statistics
         -- (migration 1764880000000).
         SELECT s.account_id, s.token_id, s.amount
         FROM holds_settle_usage(ARRAY(SELECT i.request_id FROM ins i ORDER BY i.id),
                                 ARRAY(SELECT i.token_id FROM ins i ORDER BY i.id),
                                 ARRAY(SELECT i.account_id FROM ins i ORDER BY i.id), $14::timestamptz) s
       ), unheld AS (
         UPDATE accounts a SET held = a.held - x.amount
         FROM (SELECT account_id, SUM(amount) AS amount FROM settled GROUP BY account_id) x WHERE a.id = x.account_id
       ), spend AS (
         -- The tokens' accounts are locked by this transaction, so nobody else updates them.
         UPDATE api_tokens t SET spent = t.spent + s.amount, held = t.held - COALESCE(x.amount, 0),
                last_used_at = $14::timestamptz
         FROM (SELECT token_id, COALESCE(SUM(charge) FILTER (WHERE outcome = 'charged'), 0) AS amount FROM ins GROUP BY token_id) s
         LEFT JOIN (SELECT token_id, SUM(amount) AS amount FROM settled GROUP BY token_id) x ON x.token_id = s.token_id
         WHERE t.id = s.token_id
       ), daily AS (
         INSERT INTO usage_daily AS d (account_id, day, model, requests, charged, skipped, review, input_tokens,
           output_tokens, images, charge)
         SELECT account_id, ($14::timestamptz AT TIME ZONE 'UTC')::date, model, COUNT(*),
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
       SELECT ins.*, v.fingerprint FROM ins JOIN v ON v.request_id = ins.request_id`,
      // $14 is the booking time, between the record columns.
      [...columns.slice(0, 13), recordedAt, ...columns.slice(13)],
      'usage_insert_new',
    );
    return rows.map((r) => toStoredUsage(r, r.fingerprint));
  }

  /**
   * Writes records priced with contexts and price versions an earlier write read, in one
   * call that is its own transaction (usage_book, migration 1764850000000): it locks the
   * accounts, checks that every context and price version is still the one in force, and
   * then does what insertNew and the ledger's booking do. Null when a check failed (nothing
   * was written); else the id and recording time of each record it inserted, by request id
   * (a request id already registered is left out, as insertNew leaves it out).
   */
  async bookPriced(
    records: NewUsageRecord[],
  ): Promise<Map<string, { id: string; recordedAt: Date }> | null> {
    const rows = await sqlRows<{ request_id: string | null; id: string; recorded_at: Date }>(
      this.ds,
      `SELECT request_id, id, recorded_at FROM usage_book($1::varchar[], $2::text[], $3::uuid[], $4::uuid[],
         $5::varchar[], $6::varchar[], $7::varchar[], $8::numeric[], $9::varchar[], $10::numeric[], $11::bigint[],
         $12::int[], $13::timestamptz[], $14::bigint[], $15::bigint[], $16::int[], $17::text[])`,
      recordColumns(records),
      'usage_book',
    );
    if (rows.length > 0 && rows[0].request_id === null) return null;
    return new Map(
      rows.map((r) => [r.request_id as string, { id: r.id, recordedAt: r.recorded_at }]),
    );
  }

  /**
   * The stored events of these request ids, found through the register: a request whose
   * month retention dropped comes back as archived (what the register kept of it).
   */
  async findByRequestIds(
    requestIds: string[],
    em: EntityManager = this.ds.manager,
  ): Promise<{ stored: StoredUsage[]; archived: ArchivedUsage[] }> {
    const rows = await sqlRows<
      Partial<UsageRow> & {
        asked: string;
        fingerprint: string;
        reg_account_id: string;
        reg_outcome: UsageOutcome;
        reg_charge: string;
        reg_recorded_at: Date;
      }
    >(
      em,
      `SELECT q.asked, ${FINGERPRINT_HEX} AS fingerprint, r.account_id AS reg_account_id,
              usage_outcome_name(r.outcome) AS reg_outcome, r.charge AS reg_charge, r.recorded_at AS reg_recorded_at, x.*
       FROM unnest($1::varchar[]) AS q(asked)
       JOIN usage_requests r ON r.key = usage_request_key(q.asked)
       LEFT JOIN LATERAL (
         SELECT ${USAGE_COLUMNS} FROM usage_events e
         WHERE e.account_id = r.account_id AND e.recorded_at = r.recorded_at AND e.request_id = q.asked
       ) x ON true`,
      [requestIds],
    );
    const stored: StoredUsage[] = [];
    const archived: ArchivedUsage[] = [];
    for (const r of rows) {
      if (r.id) stored.push(toStoredUsage(r as UsageRow, r.fingerprint));
      else
        archived.push({
          requestId: r.asked,
          requestHash: r.fingerprint,
          accountId: r.reg_account_id,
          outcome: r.reg_outcome,
          charge: money(r.reg_charge),
          recordedAt: r.reg_recorded_at,
        });
    }
    return { stored, archived };
  }
}

export interface UsageContext {
  tokenId: string;
  accountId: string;
  group: string;
  ratio: Decimal;
}
