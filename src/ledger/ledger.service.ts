import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { EntityManager } from 'typeorm';
import { notFound } from '../common/errors/domain-error.js';
import { ZERO } from '../common/money/money.js';
import { LedgerRepository } from './ledger.repository.js';
import { BookedEntry, BookEntry, Booking } from './ledger.types.js';

/** Every balance change goes through here, inside the caller's transaction. */
@Injectable()
export class LedgerService {
  constructor(@Inject(LedgerRepository) private readonly repo: LedgerRepository) {}

  async book(entry: BookEntry, em?: EntityManager): Promise<BookedEntry> {
    const booked = await this.repo.book(entry, em);
    if (!booked) throw notFound('account');
    return booked;
  }

  /**
   * Books entries on accounts the caller locked (FOR NO KEY UPDATE, in id order) earlier in
   * the same transaction, reading their balances into `booking`: each entry's balance_after
   * is the running balance in input order, all dated `booking.bookedAt`. The statement checks
   * the database's new balances against that running balance, so a caller that did not lock
   * gets a rolled-back transaction, not a wrong chain.
   */
  async bookMany(entries: BookEntry[], booking: Booking, em: EntityManager): Promise<void> {
    if (entries.length === 0) return;
    const running = new Map(booking.balances);
    const deltas = new Map<string, Decimal>();
    const withBalances = entries.map((e) => {
      const before = running.get(e.accountId);
      if (!before) throw new Error(`account ${e.accountId} was not locked for this booking`);
      const after = before.plus(e.amount);
      running.set(e.accountId, after);
      deltas.set(e.accountId, (deltas.get(e.accountId) ?? ZERO).plus(e.amount));
      return { ...e, balanceAfter: after };
    });
    const stored = await this.repo.applyBooking(deltas, withBalances, booking.bookedAt, em);
    // The database's sum must equal the running balance written into the entries; if not,
    // throwing rolls the whole transaction back.
    for (const id of deltas.keys()) {
      const expected = running.get(id);
      const actual = stored.get(id);
      if (!expected || !actual || !expected.eq(actual))
        throw new Error(`ledger running balance mismatch on ${id}`);
    }
  }
}
