import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money, ZERO } from '../common/money/money.js';
import { sqlRows } from '../database/sql.js';
import type { LedgerEntryType } from '../ledger/ledger.types.js';
import type { ModelUsage } from './statement-math.js';
import { eventRollupLines } from './usage-views.repository.js';

export interface LedgerLine {
  id: string;
  /** created_at as PostgreSQL's text (microseconds kept), for the page's cursor. */
  cursorAt: string;
  type: LedgerEntryType;
  amount: Decimal;
  balanceAfter: Decimal;
  description: string;
  reference: string;
  createdAt: Date;
}

interface LedgerLineRow {
  id: string;
  cursor_at: string;
  type: LedgerEntryType;
  amount: string;
  balance_after: string;
  description: string;
  reference: string;
  created_at: Date;
}

const toLedgerLine = (r: LedgerLineRow): LedgerLine => ({
  id: r.id,
  cursorAt: r.cursor_at,
  type: r.type,
  amount: money(r.amount),
  balanceAfter: money(r.balance_after),
  description: r.description,
  reference: r.reference,
  createdAt: r.created_at,
});

/** Where a ledger page starts: after this entry (`at` null: a cursor of its id alone). */
export interface LedgerCursor {
  at: string | null;
  id: string;
}

/** Net movements of the month's non-usage entries, by type. */
export interface LedgerMovements {
  topUps: { count: number; credit: Decimal; cashPaid: Decimal };
  redemptions: { count: number; credit: Decimal };
  refunds: Decimal;
  disputes: Decimal;
  adjustments: Decimal;
}

interface ModelUsageRow {
  model: string;
  requests: string;
  charged: string;
  skipped: string;
  review: string;
  charge: string;
}

const toModelUsage = (r: ModelUsageRow): ModelUsage => ({
  model: r.model,
  requests: Number(r.requests),
  charged: Number(r.charged),
  skipped: Number(r.skipped),
  review: Number(r.review),
  charge: money(r.charge),
});

/** A top-up entry's reference is the top-up's id; anything else joins to nothing. */
const UUID_TEXT = `'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'`;

/**
 * Reads the ledger, the daily usage roll-ups and the usage events for statements. Read-only:
 * the ledger module is the only code that writes these balances.
 */
@Injectable()
export class StatementsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Newest first, `limit` rows after the cursor's entry, read backwards down the ledger's
   * primary key (account_id, created_at, id), the one index the statements also use. A
   * usage entry's description ('' stored) is derived: "<model> request <reference>".
   */
  async ledgerPage(
    accountId: string,
    limit: number,
    after: LedgerCursor | null,
  ): Promise<LedgerLine[]> {
    const rows = await sqlRows<LedgerLineRow>(
      this.ds,
      `SELECT id, type, amount, balance_after,
              COALESCE(NULLIF(description, ''), model || ' request ' || reference) AS description,
              reference, created_at, created_at::text AS cursor_at
       FROM ledger_entries
       WHERE account_id = $1
         AND ($3::bigint IS NULL
              OR (created_at, id) < (COALESCE($2::timestamptz,
                                              (SELECT c.created_at FROM ledger_entries c
                                               WHERE c.account_id = $1 AND c.id = $3::bigint)), $3::bigint))
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [accountId, after?.at ?? null, after?.id ?? null, limit],
    );
    return rows.map(toLedgerLine);
  }

  /**
   * balance_after of the last entry booked before `at`, or null when there is none. Every
   * booking is dated after its account lock (see LedgerService), so an account's entries are
   * in the same order by date as by balance chain: one backward probe of
   * the ledger's primary key (account_id, created_at, id), however long the history.
   */
  async balanceBefore(
    accountId: string,
    at: string,
    em: EntityManager = this.ds.manager,
  ): Promise<Decimal | null> {
    const rows = await sqlRows<{ balance_after: string }>(
      em,
      `SELECT balance_after FROM ledger_entries
       WHERE account_id = $1 AND created_at < $2::timestamptz
       ORDER BY created_at DESC, id DESC LIMIT 1`,
      [accountId, at],
    );
    return rows[0] ? money(rows[0].balance_after) : null;
  }

  /**
   * Top-ups (with the cash paid for them), redemptions, refunds, disputes and adjustments
   * booked in [from, to). Reads only those entries, through ledger_entries (account_id, type,
   * created_at): usage entries, the bulk of the ledger, are never touched.
   */
  async movements(
    accountId: string,
    from: string,
    to: string,
    em: EntityManager = this.ds.manager,
  ): Promise<LedgerMovements> {
    const rows = await sqlRows<{
      type: LedgerEntryType;
      n: string;
      amount: string;
      cash_paid: string;
    }>(
      em,
      `SELECT l.type, count(*) AS n, sum(l.amount) AS amount, COALESCE(sum(t.amount_paid), 0) AS cash_paid
       FROM ledger_entries l
       LEFT JOIN top_ups t
         ON l.type = 'top_up' AND t.account_id = l.account_id
        AND t.id = CASE WHEN l.reference ~ ${UUID_TEXT} THEN l.reference::uuid END
       WHERE l.account_id = $1 AND l.type IN ('top_up', 'refund', 'dispute', 'redemption', 'adjustment')
         AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz
       GROUP BY l.type`,
      [accountId, from, to],
    );
    const out: LedgerMovements = {
      topUps: { count: 0, credit: ZERO, cashPaid: ZERO },
      redemptions: { count: 0, credit: ZERO },
      refunds: ZERO,
      disputes: ZERO,
      adjustments: ZERO,
    };
    for (const r of rows) {
      switch (r.type) {
        case 'top_up':
          out.topUps = {
            count: Number(r.n),
            credit: money(r.amount),
            cashPaid: money(r.cash_paid),
          };
          break;
        case 'redemption':
          out.redemptions = { count: Number(r.n), credit: money(r.amount) };
          break;
        case 'refund':
          out.refunds = money(r.amount);
          break;
        case 'dispute':
          out.disputes = money(r.amount);
          break;
        case 'adjustment':
          out.adjustments = money(r.amount);
          break;
        case 'usage':
          break;
      }
    }
    return out;
  }

  /** Usage per model over whole UTC days [fromDay, toDay), from the daily roll-ups (~31 × models rows a month). */
  async usageByModelFromRollups(
    accountId: string,
    fromDay: string,
    toDay: string,
    em: EntityManager = this.ds.manager,
  ): Promise<ModelUsage[]> {
    const rows = await sqlRows<ModelUsageRow>(
      em,
      `SELECT model, sum(requests) AS requests, sum(charged) AS charged, sum(skipped) AS skipped,
              sum(review) AS review, sum(charge) AS charge
       FROM usage_daily
       WHERE account_id = $1 AND day >= $2::date AND day < $3::date
       GROUP BY model ORDER BY model`,
      [accountId, fromDay, toDay],
    );
    return rows.map(toModelUsage);
  }

  /** The same from the events themselves: the slow, exact path, used to cross-check the roll-ups. */
  async usageByModelFromEvents(
    accountId: string,
    from: string,
    to: string,
    em: EntityManager = this.ds.manager,
  ): Promise<ModelUsage[]> {
    const rows = await sqlRows<ModelUsageRow>(
      em,
      `SELECT model, sum(requests) AS requests, sum(charged) AS charged, sum(skipped) AS skipped,
              sum(review) AS review, COALESCE(sum(charge), 0) AS charge
       FROM (${eventRollupLines((col) => `e.account_id = $1 AND ${col} >= $2::timestamptz AND ${col} < $3::timestamptz`)}) u
       GROUP BY model ORDER BY model`,
      [accountId, from, to],
    );
    return rows.map(toModelUsage);
  }
}
