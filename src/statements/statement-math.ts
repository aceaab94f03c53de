import type { Decimal } from 'decimal.js';
import { invalid } from '../common/errors/domain-error.js';
import { ZERO } from '../common/money/money.js';

/** A calendar month in UTC: [start, end) as timestamps and as days. */
export interface Period {
  period: string;
  start: string;
  end: string;
  startDay: string;
  endDay: string;
}

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

const firstOf = (year: number, month: number): string =>
  `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-01`;

/**
 * `YYYY-MM`, not after the current UTC month (a future month has nothing booked yet and would
 * look like a final statement).
 */
export function parsePeriod(value: string, now: Date): Period {
  const m = PERIOD.exec(value);
  if (!m || m[1] === '0000') {
    throw invalid('period', 'period must be a calendar month YYYY-MM (e.g. 2026-11)');
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  if (year * 12 + (month - 1) > now.getUTCFullYear() * 12 + now.getUTCMonth()) {
    throw invalid(
      'period',
      'period is in the future: statements cover the current month or earlier',
    );
  }
  const startDay = firstOf(year, month);
  const endDay = month === 12 ? firstOf(year + 1, 1) : firstOf(year, month + 1);
  return {
    period: value,
    start: `${startDay}T00:00:00.000Z`,
    end: `${endDay}T00:00:00.000Z`,
    startDay,
    endDay,
  };
}

export interface ModelUsage {
  model: string;
  requests: number;
  charged: number;
  skipped: number;
  /** Events that arrived above their price's reviewAbove (booked later if approved). */
  review: number;
  charge: Decimal;
}

/** What the ledger and the usage tables say about one account and one month. */
export interface StatementFacts {
  /** balance_after of the last entry before the month (null: none). */
  openingBalance: Decimal | null;
  /** balance_after of the last entry before the month's end (null: none at all). */
  closingBalance: Decimal | null;
  topUps: { count: number; credit: Decimal; cashPaid: Decimal };
  /** The month's redemption entries: codes redeemed and the credit they booked. */
  redemptions: { count: number; credit: Decimal };
  /** Net of the month's refund entries as booked (debits, so normally negative). */
  refundEntries: Decimal;
  /** Net of the month's dispute entries, signed (debits negative, reversals positive). */
  disputeEntries: Decimal;
  /** Net of the month's adjustment entries, signed. */
  adjustmentEntries: Decimal;
  byModel: ModelUsage[];
}

export interface Statement {
  period: string;
  currency: 'USD';
  openingBalance: Decimal;
  topUps: { count: number; credit: Decimal; cashPaid: Decimal };
  redemptions: { count: number; credit: Decimal };
  usage: {
    requests: number;
    charged: number;
    skipped: number;
    review: number;
    charge: Decimal;
    byModel: ModelUsage[];
  };
  /** Credit taken back by refunds, shown positive. */
  refunds: Decimal;
  /** Signed net of disputes: negative when they held credit back, positive when won back. */
  disputes: Decimal;
  /** Signed net of adjustments. */
  adjustments: Decimal;
  closingBalance: Decimal;
}

export interface BuiltStatement {
  statement: Statement;
  /**
   * opening + top-up credit + redemption credit − usage − refunds + disputes + adjustments:
   * must equal the closing balance.
   */
  expectedClosing: Decimal;
  reconciles: boolean;
}

/**
 * Assembles a statement. The closing balance is the ledger's own (the last entry's
 * balance_after); the movements must add up to it exactly, and the caller checks `reconciles`.
 */
export function buildStatement(period: string, f: StatementFacts): BuiltStatement {
  const opening = f.openingBalance ?? ZERO;
  const closing = f.closingBalance ?? opening;
  const byModel = [...f.byModel].sort((a, b) =>
    a.model < b.model ? -1 : a.model > b.model ? 1 : 0,
  );
  const usage = byModel.reduce(
    (acc, m) => ({
      requests: acc.requests + m.requests,
      charged: acc.charged + m.charged,
      skipped: acc.skipped + m.skipped,
      review: acc.review + m.review,
      charge: acc.charge.plus(m.charge),
    }),
    { requests: 0, charged: 0, skipped: 0, review: 0, charge: ZERO },
  );
  const refunds = f.refundEntries.neg();
  const expectedClosing = opening
    .plus(f.topUps.credit)
    .plus(f.redemptions.credit)
    .minus(usage.charge)
    .minus(refunds)
    .plus(f.disputeEntries)
    .plus(f.adjustmentEntries);
  return {
    statement: {
      period,
      currency: 'USD',
      openingBalance: opening,
      topUps: f.topUps,
      redemptions: f.redemptions,
      usage: { ...usage, byModel },
      refunds,
      disputes: f.disputeEntries,
      adjustments: f.adjustmentEntries,
      closingBalance: closing,
    },
    expectedClosing,
    reconciles: expectedClosing.eq(closing),
  };
}
