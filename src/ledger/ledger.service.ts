import { Inject, Injectable } from '@nestjs/common';
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
}
