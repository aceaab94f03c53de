import type { Decimal } from 'decimal.js';

/** Every kind of ledger entry (the ledger_entries type CHECK lists the same). */
export const LEDGER_ENTRY_TYPES = [
  'usage',
  'top_up',
  'refund',
  'dispute',
  'redemption',
  'adjustment',
] as const;
export type LedgerEntryType = (typeof LEDGER_ENTRY_TYPES)[number];

export interface BookEntry {
  accountId: string;
  type: LedgerEntryType;
  /** Signed: credits positive, debits negative. */
  amount: Decimal;
  /**
   * What the entry is for. A usage entry may give only its `model` instead: its description
   * is then "<model> request <reference>", derived on read rather than stored with each entry.
   */
  description?: string;
  model?: string;
  /**
   * The cause's id (request id, top-up id, refund id, dispute id, redemption code id,
   * adjustment id): unique per type.
   */
  reference: string;
}

export interface BookedEntry {
  id: string;
  accountId: string;
  type: LedgerEntryType;
  amount: Decimal;
  balanceAfter: Decimal;
  description: string;
  reference: string;
  createdAt: Date;
}

/** Accounts locked for a multi-entry booking, with their balances and the booking time. */
export interface Booking {
  balances: Map<string, Decimal>;
  /** PostgreSQL timestamptz text (microseconds kept), read after every lock was taken. */
  bookedAt: string;
}
