import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import type { Booking } from '../ledger/ledger.types.js';
import {
  FINGERPRINT_HEX,
  StoredUsage,
  toStoredUsage,
  USAGE_COLUMNS,
  UsageRow,
} from './usage.repository.js';

type Row = UsageRow & { fingerprint: string };

/** The event's row in its month's partition (the register says which), with the fingerprint. */
const EVENT_OF = `usage_events e JOIN usage_requests r ON r.key = usage_request_key(e.request_id)`;

/**
 * The admin's review queue: usage events priced above their version's reviewAbove. Like the
 * ingestion statement, an approval writes api_tokens.spent and usage_daily besides its own
 * usage_events (a deliberate exception to table ownership: they must move together).
 */
@Injectable()
export class UsageReviewsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Undecided reviews of every account, newest first (the partial index usage_events_review). */
  async listPending(
    limit: number,
    after: CursorKey | null,
  ): Promise<(StoredUsage & { cursorAt: string })[]> {
    const rows = await sqlRows<Row & { cursor_at: string }>(
      this.ds,
      `SELECT ${USAGE_COLUMNS}, ${FINGERPRINT_HEX} AS fingerprint, e.recorded_at::text AS cursor_at
       FROM ${EVENT_OF}
       WHERE e.outcome = 'review' AND ($1::timestamptz IS NULL OR (e.recorded_at, e.id) < ($1::timestamptz, $2::bigint))
       ORDER BY e.recorded_at DESC, e.id DESC LIMIT $3`,
      [after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    return rows.map((r) => ({ ...toStoredUsage(r, r.fingerprint), cursorAt: r.cursor_at }));
  }

  /** The event of a request id, through the register (null when unknown or its month was dropped). */
  async find(requestId: string, em: EntityManager = this.ds.manager): Promise<StoredUsage | null> {
    const rows = await sqlRows<Row>(
      em,
      `SELECT ${USAGE_COLUMNS}, ${FINGERPRINT_HEX} AS fingerprint
       FROM usage_requests r
       JOIN usage_events e ON e.account_id = r.account_id AND e.recorded_at = r.recorded_at AND e.request_id = $1
       WHERE r.key = usage_request_key($1)`,
      [requestId],
    );
    return rows[0] ? toStoredUsage(rows[0], rows[0].fingerprint) : null;
  }

  /** Locks the account for a booking and reads its balance and the booking time after the lock. */
  async lockAccount(accountId: string, em: EntityManager): Promise<Booking> {
    const rows = await sqlRows<{ balance: string; at: string }>(
      em,
      `SELECT balance::text AS balance, clock_timestamp()::text AS at FROM accounts WHERE id = $1 FOR NO KEY UPDATE`,
      [accountId],
    );
    return { balances: new Map([[accountId, money(rows[0].balance)]]), bookedAt: rows[0].at };
  }

  /**
   * Approves an undecided review: outcome charged, dated `bookedAt`, with the token's spend and
   * the approval day's roll-up moved in the same statement. Null when it was decided already:
   * the row's own lock and the outcome in the WHERE make a racing approve or void lose.
   */
  async approve(
    found: StoredUsage,
    bookedAt: string,
    em: EntityManager,
  ): Promise<StoredUsage | null> {
    const rows = await sqlRows<Row>(
      em,
      `WITH ev AS (
         UPDATE usage_events e SET outcome = 'charged', reason = NULL, reviewed_at = $2::timestamptz
         FROM usage_requests r
         WHERE r.key = usage_request_key($1) AND e.account_id = r.account_id AND e.recorded_at = r.recorded_at
           AND e.request_id = $1 AND e.outcome = 'review'
         RETURNING ${USAGE_COLUMNS}
       ), reg AS (
         UPDATE usage_requests r SET outcome = 'charged' FROM ev WHERE r.key = usage_request_key(ev.request_id)
         RETURNING ${FINGERPRINT_HEX} AS fingerprint
       ), spend AS (
         UPDATE api_tokens t SET spent = t.spent + ev.charge FROM ev WHERE t.id = ev.token_id
       ), daily AS (
         INSERT INTO usage_daily AS d (account_id, day, model, requests, charged, skipped, review, input_tokens,
           output_tokens, images, charge)
         SELECT account_id, ($2::timestamptz AT TIME ZONE 'UTC')::date, model, 0, 1, 0, 0, 0, 0,
                images, charge
         FROM ev
         ON CONFLICT (account_id, day, model) DO UPDATE SET
           charged = d.charged + 1, images = d.images + EXCLUDED.images, charge = d.charge + EXCLUDED.charge
       )
       SELECT ev.*, reg.fingerprint FROM ev, reg`,
      [found.requestId, bookedAt],
    );
    return rows[0] ? toStoredUsage(rows[0], rows[0].fingerprint) : null;
  }

  /** Voids an undecided review: never charged. Null when it was decided already. */
  async void(found: StoredUsage, em: EntityManager): Promise<StoredUsage | null> {
    const rows = await sqlRows<Row>(
      em,
      `WITH ev AS (
         UPDATE usage_events e SET outcome = 'voided', reviewed_at = clock_timestamp()
         FROM usage_requests r
         WHERE r.key = usage_request_key($1) AND e.account_id = r.account_id AND e.recorded_at = r.recorded_at
           AND e.request_id = $1 AND e.outcome = 'review'
         RETURNING ${USAGE_COLUMNS}
       ), reg AS (
         UPDATE usage_requests r SET outcome = 'voided' FROM ev WHERE r.key = usage_request_key(ev.request_id)
         RETURNING ${FINGERPRINT_HEX} AS fingerprint
       )
       SELECT ev.*, reg.fingerprint FROM ev, reg`,
      [found.requestId],
    );
    return rows[0] ? toStoredUsage(rows[0], rows[0].fingerprint) : null;
  }
}
