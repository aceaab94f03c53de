import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import type { Booking } from '../ledger/ledger.types.js';
import { toUsageRecord, USAGE_COLUMNS, UsageRecord } from './usage.repository.js';

type Row = Parameters<typeof toUsageRecord>[0];

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
  ): Promise<(UsageRecord & { cursorAt: string })[]> {
    const rows = await sqlRows<Row & { cursor_at: string }>(
      this.ds,
      `SELECT ${USAGE_COLUMNS}, recorded_at::text AS cursor_at FROM usage_events
       WHERE outcome = 'review' AND ($1::timestamptz IS NULL OR (recorded_at, id) < ($1::timestamptz, $2::bigint))
       ORDER BY recorded_at DESC, id DESC LIMIT $3`,
      [after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    return rows.map((r) => ({ ...toUsageRecord(r), cursorAt: r.cursor_at }));
  }

  async find(requestId: string, em: EntityManager = this.ds.manager): Promise<UsageRecord | null> {
    const rows = await sqlRows<Row>(
      em,
      `SELECT ${USAGE_COLUMNS} FROM usage_events WHERE request_id = $1`,
      [requestId],
    );
    return rows[0] ? toUsageRecord(rows[0]) : null;
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
    requestId: string,
    bookedAt: string,
    em: EntityManager,
  ): Promise<UsageRecord | null> {
    const rows = await sqlRows<Row>(
      em,
      `WITH ev AS (
         UPDATE usage_events SET outcome = 'charged', reason = NULL, reviewed_at = $2::timestamptz
         WHERE request_id = $1 AND outcome = 'review'
         RETURNING ${USAGE_COLUMNS}, images
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
       SELECT ${USAGE_COLUMNS} FROM ev`,
      [requestId, bookedAt],
    );
    return rows[0] ? toUsageRecord(rows[0]) : null;
  }

  /** Voids an undecided review: never charged. Null when it was decided already. */
  async void(requestId: string, em: EntityManager): Promise<UsageRecord | null> {
    const rows = await sqlRows<Row>(
      em,
      `UPDATE usage_events SET outcome = 'voided', reviewed_at = clock_timestamp()
       WHERE request_id = $1 AND outcome = 'review' RETURNING ${USAGE_COLUMNS}`,
      [requestId],
    );
    return rows[0] ? toUsageRecord(rows[0]) : null;
  }
}
