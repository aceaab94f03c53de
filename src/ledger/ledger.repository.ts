import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { BookedEntry, BookEntry, LedgerEntryType } from './ledger.types.js';

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

/** The only SQL that changes `accounts.balance`. */
@Injectable()
export class LedgerRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Moves the balance and appends the entry in one statement: the UPDATE takes the account's
   * row lock, so concurrent bookings serialise on it and each `balance_after` is exact.
   * Returns null when the account does not exist.
   */
  async book(e: BookEntry, em: EntityManager = this.ds.manager): Promise<BookedEntry | null> {
    const rows: EntryRow[] = await em.query(
      `WITH acc AS (
         UPDATE accounts SET balance = balance + $2::numeric WHERE id = $1 RETURNING balance
       )
       INSERT INTO ledger_entries (account_id, type, amount, balance_after, description, reference)
       SELECT $1, $3, $2::numeric, acc.balance, $4, $5 FROM acc
       RETURNING id, account_id, type, amount, balance_after, description, reference, created_at`,
      [e.accountId, e.amount.toFixed(), e.type, e.description, e.reference],
    );
    return rows[0] ? toBookedEntry(rows[0]) : null;
  }
}
