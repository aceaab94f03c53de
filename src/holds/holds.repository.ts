import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';

export type HoldStatus = 'active' | 'settled' | 'released' | 'expired';

export interface Hold {
  requestId: string;
  accountId: string;
  tokenId: string;
  model: string;
  amount: Decimal;
  /** As stored; an active hold past expiresAt counts as expired already. */
  status: HoldStatus;
  createdAt: Date;
  expiresAt: Date;
  cursorAt: string;
}

interface HoldRow {
  request_id: string;
  account_id: string;
  token_id: string;
  model: string;
  amount: string;
  status: HoldStatus;
  expired: boolean;
  created_at: Date;
  expires_at: Date;
  cursor_at: string;
}

const COLUMNS = `request_id, account_id, token_id, model, amount::text AS amount, status,
  (status = 'active' AND expires_at <= now()) AS expired, created_at, expires_at, created_at::text AS cursor_at`;

const toHold = (r: HoldRow): Hold => ({
  requestId: r.request_id,
  accountId: r.account_id,
  tokenId: r.token_id,
  model: r.model,
  amount: money(r.amount),
  status: r.expired ? 'expired' : r.status,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  cursorAt: r.cursor_at,
});

export interface NewHold {
  requestId: string;
  accountId: string;
  tokenId: string;
  model: string;
  amount: Decimal;
  ttlSeconds: number;
}

export type PlaceResult =
  | { kind: 'placed'; hold: Hold; balance: Decimal; held: Decimal }
  | { kind: 'exists' }
  | {
      kind: 'denied';
      reason: 'insufficient_balance' | 'spend_limit_reached' | 'unusable';
    };

/** What holds_place answers (authorize_facts answers the same, prefixed place_). */
export interface PlaceRow {
  locked: boolean;
  placed: boolean;
  balance_ok: boolean | null;
  spend_ok: boolean | null;
  usable: boolean | null;
  fresh: boolean | null;
  balance: string | null;
  held: string | null;
  created_at: Date | null;
  expires_at: Date | null;
  cursor_at: string | null;
}

/** holds_place's answer for the hold asked for; null when the account or token does not exist. */
export function toPlaceResult(r: PlaceRow, h: Omit<NewHold, 'ttlSeconds'>): PlaceResult | null {
  if (!r.locked) return null;
  if (r.placed && r.balance && r.held && r.created_at && r.expires_at && r.cursor_at) {
    return {
      kind: 'placed',
      hold: {
        requestId: h.requestId,
        accountId: h.accountId,
        tokenId: h.tokenId,
        model: h.model,
        amount: h.amount,
        status: 'active',
        createdAt: r.created_at,
        expiresAt: r.expires_at,
        cursorAt: r.cursor_at,
      },
      balance: money(r.balance),
      held: money(r.held),
    };
  }
  // Checked in the contract's order of importance: a request already held or booked first.
  if (r.fresh === false || (r.fresh && r.usable && r.balance_ok && r.spend_ok))
    return { kind: 'exists' };
  if (!r.usable) return { kind: 'denied', reason: 'unusable' };
  if (!r.balance_ok) return { kind: 'denied', reason: 'insufficient_balance' };
  return { kind: 'denied', reason: 'spend_limit_reached' };
}

/**
 * Holds: money set aside for work in flight (TigerBeetle's pending transfer). Never a ledger
 * entry. Owns `holds`, and writes `accounts.held` and `api_tokens.held` — a deliberate
 * exception to table ownership: those sums must change in the same statement as the holds
 * they sum, under the account's row lock, or they could drift.
 *
 * Lock order everywhere (authorize, settlement in ingestion, release, sweep): the account
 * row first, then its holds and tokens, so none of these can deadlock with another.
 */
@Injectable()
export class HoldsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Places a hold if the account and token can carry it, in one round trip: holds_place
   * (migration 1764810000000) locks the account row, then in a fresh snapshot reads balances,
   * holds and usage as they stand after every earlier booking on the account, so the check
   * and the reservation are one atomic step. Expired holds on the account are swept in the
   * same statement, so they stop counting whether or not a sweeper ran. Null when the
   * account or token does not exist.
   */
  async place(h: NewHold): Promise<PlaceResult | null> {
    const rows = await sqlRows<PlaceRow>(
      this.ds,
      `SELECT * FROM holds_place($1, $2, $3, $4, $5, $6)`,
      [h.requestId, h.accountId, h.tokenId, h.model, h.amount.toFixed(), h.ttlSeconds],
      'holds_place',
    );
    return toPlaceResult(rows[0], h);
  }

  /** Locks the account that owns the hold; null when there is no such hold. */
  async lockAccountOfHold(requestId: string, em: EntityManager): Promise<string | null> {
    const rows = await sqlRows<{ id: string }>(
      em,
      `SELECT a.id FROM accounts a JOIN holds h ON h.account_id = a.id WHERE h.request_id = $1
       FOR NO KEY UPDATE OF a`,
      [requestId],
    );
    return rows[0]?.id ?? null;
  }

  /**
   * Releases an active hold (the gateway abandoned the work) and gives its amount back to the
   * account and token; the caller's transaction holds the account's lock. Returns the hold as
   * it stands afterwards. One that expired before its release is marked expired.
   */
  async release(requestId: string, em: EntityManager): Promise<Hold | null> {
    await sqlRows(
      em,
      `WITH rel AS (
         UPDATE holds SET status = CASE WHEN expires_at <= now() THEN 'expired' ELSE 'released' END, closed_at = now()
         WHERE request_id = $1 AND status = 'active'
         RETURNING account_id, token_id, amount
       ), ua AS (
         UPDATE accounts a SET held = a.held - rel.amount FROM rel WHERE a.id = rel.account_id
       )
       UPDATE api_tokens t SET held = t.held - rel.amount FROM rel WHERE t.id = rel.token_id`,
      [requestId],
    );
    return this.find(requestId, em);
  }

  async find(requestId: string, em: EntityManager = this.ds.manager): Promise<Hold | null> {
    const rows = await sqlRows<HoldRow>(em, `SELECT ${COLUMNS} FROM holds WHERE request_id = $1`, [
      requestId,
    ]);
    return rows[0] ? toHold(rows[0]) : null;
  }

  /** The account's holds that count now (active, not expired), newest first. */
  async listActive(accountId: string, limit: number, after: CursorKey | null): Promise<Hold[]> {
    const rows = await sqlRows<HoldRow>(
      this.ds,
      `SELECT ${COLUMNS} FROM holds
       WHERE account_id = $1 AND status = 'active' AND expires_at > now()
         AND ($2::timestamptz IS NULL OR (created_at, request_id) < ($2::timestamptz, $3::varchar))
       ORDER BY created_at DESC, request_id DESC LIMIT $4`,
      [accountId, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    return rows.map(toHold);
  }

  /** Holds that count now, all accounts (the partial index holds_active_expiry). */
  async countActive(): Promise<number> {
    const [row] = await sqlRows<{ n: string }>(
      this.ds,
      `SELECT count(*)::text AS n FROM holds WHERE status = 'active' AND expires_at > now()`,
    );
    return Number.parseInt(row.n, 10);
  }

  /**
   * Marks expired holds as such and gives their amounts back, for up to `maxAccounts`
   * accounts at a time. Accounts busy in another transaction are skipped (SKIP LOCKED): their
   * next authorize sweeps them itself, and their expired holds count for nothing meanwhile.
   * Any instance may run this at any time; returns how many holds it closed.
   */
  async sweepExpired(maxAccounts: number): Promise<number> {
    return this.ds.transaction(async (em) => {
      const locked = await sqlRows<{ id: string }>(
        em,
        `SELECT id FROM accounts
         WHERE id IN (SELECT account_id FROM holds WHERE status = 'active' AND expires_at <= now()
                      ORDER BY expires_at LIMIT $1)
         ORDER BY id FOR NO KEY UPDATE SKIP LOCKED`,
        [maxAccounts * 10],
      );
      if (locked.length === 0) return 0;
      const rows = await sqlRows<{ n: string }>(
        em,
        `WITH swept AS (
           UPDATE holds SET status = 'expired', closed_at = now()
           WHERE account_id = ANY($1::uuid[]) AND status = 'active' AND expires_at <= now()
           RETURNING account_id, token_id, amount
         ), ua AS (
           UPDATE accounts a SET held = a.held - s.amount
           FROM (SELECT account_id, sum(amount) AS amount FROM swept GROUP BY account_id) s WHERE a.id = s.account_id
         ), ut AS (
           UPDATE api_tokens t SET held = t.held - s.amount
           FROM (SELECT token_id, sum(amount) AS amount FROM swept GROUP BY token_id) s WHERE t.id = s.token_id
         )
         SELECT count(*)::text AS n FROM swept`,
        [locked.slice(0, maxAccounts).map((r) => r.id)],
      );
      return Number.parseInt(rows[0].n, 10);
    });
  }
}
