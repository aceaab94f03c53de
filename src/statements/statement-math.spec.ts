import { describe, expect, it } from '@jest/globals';
import { DomainError } from '../common/errors/domain-error.js';
import { formatAmount, money, ZERO } from '../common/money/money.js';
import { buildStatement, parsePeriod, StatementFacts } from './statement-math.js';

const NOW = new Date('2026-11-15T12:00:00Z');

const facts = (over: Partial<StatementFacts> = {}): StatementFacts => ({
  openingBalance: null,
  closingBalance: null,
  topUps: { count: 0, credit: ZERO, cashPaid: ZERO },
  redemptions: { count: 0, credit: ZERO },
  refundEntries: ZERO,
  disputeEntries: ZERO,
  adjustmentEntries: ZERO,
  byModel: [],
  ...over,
});

const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err.details[0]?.field;
    throw err;
  }
  return undefined;
};

describe('parsePeriod', () => {
  it.each([
    ['2026-11', '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
    ['2025-12', '2025-12-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['0001-01', '0001-01-01T00:00:00.000Z', '0001-02-01T00:00:00.000Z'],
  ])('reads %s as the UTC month [%s, %s)', (p, start, end) => {
    const period = parsePeriod(p, NOW);
    expect([period.start, period.end]).toEqual([start, end]);
    expect([period.startDay, period.endDay]).toEqual([start.slice(0, 10), end.slice(0, 10)]);
  });

  it.each([
    '2026-13',
    '26-11',
    '2026-1',
    '2026-00',
    '0000-05',
    '2026-11-01',
    ' 2026-11',
    '2026/11',
    '',
  ])('refuses the malformed period %p naming period', (p) => {
    expect(fieldOf(() => parsePeriod(p, NOW))).toBe('period');
  });

  it.each(['2026-12', '2027-01', '9999-12'])('refuses the future month %s', (p) => {
    expect(fieldOf(() => parsePeriod(p, NOW))).toBe('period');
  });
});

describe('buildStatement', () => {
  it('is all zeros for an account with no entries at all', () => {
    const { statement, reconciles } = buildStatement('2026-10', facts());
    expect(reconciles).toBe(true);
    expect(formatAmount(statement.openingBalance)).toBe('0.00');
    expect(formatAmount(statement.closingBalance)).toBe('0.00');
    expect(statement.usage).toEqual({
      requests: 0,
      charged: 0,
      skipped: 0,
      review: 0,
      charge: ZERO,
      byModel: [],
    });
  });

  it('carries the balance through a month with no entries', () => {
    const carried = money('12.3456789012');
    const { statement, reconciles } = buildStatement(
      '2026-10',
      facts({ openingBalance: carried, closingBalance: carried }),
    );
    expect(reconciles).toBe(true);
    expect(statement.openingBalance.eq(carried) && statement.closingBalance.eq(carried)).toBe(true);
  });

  it('reconciles top-ups, usage, refunds and adjustments to the last digit', () => {
    // opening 10.00; top-up credit 100 (cash 85.00); usage 0.0350620000 + 0.03 + 0.0000000001;
    // a refund that took back 30.00 (booked −30); adjustments +5 and −0.1000000001.
    const { statement, reconciles, expectedClosing } = buildStatement(
      '2026-11',
      facts({
        openingBalance: money('10.00'),
        closingBalance: money('84.8349379998'),
        topUps: { count: 1, credit: money('100'), cashPaid: money('85.00') },
        refundEntries: money('-30'),
        adjustmentEntries: money('4.8999999999'),
        byModel: [
          {
            model: 'gpt-image-2-all',
            requests: 2,
            charged: 1,
            skipped: 1,
            review: 0,
            charge: money('0.03'),
          },
          {
            model: 'gpt-image-2',
            requests: 2,
            charged: 2,
            skipped: 0,
            review: 0,
            charge: money('0.0350620001'),
          },
        ],
      }),
    );
    expect(expectedClosing.toFixed()).toBe('84.8349379998');
    expect(reconciles).toBe(true);
    expect(formatAmount(statement.refunds)).toBe('30.00');
    expect(formatAmount(statement.usage.charge)).toBe('0.0650620001');
    expect(statement.usage.byModel.map((m) => m.model)).toEqual(['gpt-image-2', 'gpt-image-2-all']);
    expect([statement.usage.requests, statement.usage.charged, statement.usage.skipped]).toEqual([
      4, 3, 1,
    ]);
    expect(formatAmount(statement.topUps.cashPaid)).toBe('85.00');
  });

  it('shows a refund positive and reconciles a top-up refunded in full in the same month', () => {
    const { statement, reconciles } = buildStatement(
      '2026-11',
      facts({
        openingBalance: money('1'),
        closingBalance: money('1'),
        topUps: { count: 1, credit: money('50'), cashPaid: money('42.50') },
        refundEntries: money('-50'),
      }),
    );
    expect(reconciles).toBe(true);
    expect(statement.refunds.toFixed()).toBe('50');
  });

  it('adds redemption credit and signed disputes, to the last digit', () => {
    // opening 0; top-up 100 (85.00 cash); a code worth 10; a dispute of 42.50 of 85.00 cash
    // held back 50 (−50), then won (+50); another of 10.00 cash held back 11.7647058824 (lost);
    // a refund of 10.00 cash took 11.7647058824 back; usage 0.0000000001.
    const { statement, reconciles, expectedClosing } = buildStatement(
      '2026-11',
      facts({
        openingBalance: null,
        closingBalance: money('86.4705882351'),
        topUps: { count: 1, credit: money('100'), cashPaid: money('85.00') },
        redemptions: { count: 1, credit: money('10') },
        refundEntries: money('-11.7647058824'),
        disputeEntries: money('-50').plus('50').minus('11.7647058824'),
        byModel: [
          { model: 'm', requests: 1, charged: 1, skipped: 0, review: 0, charge: money('1e-10') },
        ],
      }),
    );
    expect(expectedClosing.toFixed()).toBe('86.4705882351');
    expect(reconciles).toBe(true);
    expect(formatAmount(statement.disputes)).toBe('-11.7647058824');
    expect(formatAmount(statement.refunds)).toBe('11.7647058824');
    expect(statement.redemptions).toEqual({ count: 1, credit: money('10') });
  });

  it('reports a closing balance that the movements do not explain', () => {
    const { reconciles, expectedClosing, statement } = buildStatement(
      '2026-11',
      facts({
        openingBalance: money('10'),
        closingBalance: money('9.9999999999'),
        byModel: [
          {
            model: 'm',
            requests: 1,
            charged: 1,
            skipped: 0,
            review: 0,
            charge: money('0.0000000002'),
          },
        ],
      }),
    );
    expect(reconciles).toBe(false);
    expect(expectedClosing.toFixed()).toBe('9.9999999998');
    // The ledger's own balance is what the statement shows as closing.
    expect(statement.closingBalance.toFixed()).toBe('9.9999999999');
  });
});
