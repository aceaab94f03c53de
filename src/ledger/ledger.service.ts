import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { EntityManager } from 'typeorm';
import { notFound } from '../common/errors/domain-error.js';
import { LedgerRepository } from './ledger.repository.js';
import { BookedEntry, BookEntry } from './ledger.types.js';

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
   * Books many entries in one transaction (the caller's): each entry's balance_after is the
   * running balance in input order, and the accounts' rows stay locked until commit.
   */
  async bookMany(entries: BookEntry[], em: EntityManager): Promise<BookedEntry[]> {
    if (entries.length === 0) return [];
    const ids = [...new Set(entries.map((e) => e.accountId))].sort();
    const running = await this.repo.lockBalances(ids, em);
    const deltas = new Map<string, Decimal>();
    const withBalances = entries.map((e) => {
      const before = running.get(e.accountId);
      if (!before) throw notFound('account');
      const after = before.plus(e.amount);
      running.set(e.accountId, after);
      deltas.set(e.accountId, (deltas.get(e.accountId) ?? after.minus(after)).plus(e.amount));
      return { ...e, balanceAfter: after };
    });
    const stored = await this.repo.addToBalances(deltas, em);
    // The database's sum must equal the running balance we wrote into the entries.
    for (const [id, balance] of stored) {
      if (!balance.eq(running.get(id) ?? balance.plus(1))) throw new Error(`ledger running balance mismatch on ${id}`);
    }
    return this.repo.insertEntries(withBalances, em);
  }
}
