import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { Decimal } from 'decimal.js';
import { money } from '../common/money/money.js';
import { BookedEntry, BookEntry, LedgerEntryType } from './ledger.types.js';
import { sqlRows } from '../database/sql.js';

interface EntryRow {
  id: string;
  account_id: string;
  type: LedgerEntryType;
  amount: string;
  balance_after: string;
  description: string;
  reference: string;
  created_at: Date;
}

export const toBookedEntry = (r: EntryRow): BookedEntry => ({
  id: r.id,
  accountId: r.account_id,
  type: r.type,
  amount: money(r.amount),
  balanceAfter: money(r.balance_after),
  description: r.description,
  reference: r.reference,
  createdAt: r.created_at,
});

/** An entry's description as stored in full (entries given only a model derive theirs). */
const describe = (e: BookEntry): string =>
  e.description ?? `${e.model ?? e.type} request ${e.reference}`;

/** The only SQL that changes `accounts.balance`. */
@Injectable()
export class LedgerRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Moves the balance and appends the entry in one statement: the UPDATE takes the account's
   * row lock, so concurrent bookings serialise on it and each `balance_after` is exact. The
   * entry is dated by clock_timestamp() read after that lock, so an account's entries are in
   * the same order by date as by balance chain, and a closed month never gains an entry.
   * Returns null when the account does not exist.
   */
  async book(e: BookEntry, em: EntityManager = this.ds.manager): Promise<BookedEntry | null> {
    const rows = await sqlRows<EntryRow>(
      em,
      `WITH acc AS (
         UPDATE accounts SET balance = balance + $2::numeric WHERE id = $1 RETURNING balance
       )
       INSERT INTO ledger_entries (account_id, type, amount, balance_after, description, reference, created_at)
       SELECT $1, $3, $2::numeric, acc.balance, $4, $5, clock_timestamp() FROM acc
       RETURNING id, account_id, type, amount, balance_after, description, reference, created_at`,
      [e.accountId, e.amount.toFixed(), e.type, describe(e), e.reference],
    );
    return rows[0] ? toBookedEntry(rows[0]) : null;
  }

  /**
   * Adds each delta to its locked account and appends the entries, in one statement (one
   * round trip on the ingestion path). Returns the accounts' new balances.
   */
  async applyBooking(
    deltas: Map<string, Decimal>,
    entries: (BookEntry & { balanceAfter: Decimal })[],
    bookedAt: string,
    em: EntityManager,
  ): Promise<Map<string, Decimal>> {
    const ids = [...deltas.keys()];
    const rows = await sqlRows<{ id: string; balance: string }>(
      em,
      `WITH moved AS (
         UPDATE accounts a SET balance = a.balance + v.delta
         FROM unnest($1::uuid[], $2::numeric[]) AS v(id, delta) WHERE a.id = v.id
         RETURNING a.id, a.balance
       ), booked AS (
         -- Runs to completion although nothing reads it: PostgreSQL executes every
         -- data-modifying WITH exactly once.
         INSERT INTO ledger_entries (account_id, type, amount, balance_after, description, reference, model, created_at)
         SELECT v.*, $9::timestamptz
         FROM unnest($3::uuid[], $4::varchar[], $5::numeric[], $6::numeric[], $7::text[], $8::text[], $10::varchar[]) AS v
       )
       SELECT id, balance::text AS balance FROM moved`,
      [
        ids,
        ids.map((id) => deltas.get(id)?.toFixed()),
        entries.map((e) => e.accountId),
        entries.map((e) => e.type),
        entries.map((e) => e.amount.toFixed()),
        entries.map((e) => e.balanceAfter.toFixed()),
        // '' rather than NULL: a row without NULLs carries no null bitmap (8 bytes of header).
        entries.map((e) =>
          e.model !== undefined && e.description === undefined ? '' : describe(e),
        ),
        entries.map((e) => e.reference),
        bookedAt,
        entries.map((e) => e.model ?? null),
      ],
      'ledger_apply_booking',
    );
    return new Map(rows.map((r) => [r.id, money(r.balance)]));
  }
}
