import { describe, expect, it } from '@jest/globals';
import { endOfDayUtc, formatTime, last30Days, monthLabel, nextDay, recentMonths } from './dates.js';

describe('console dates (UTC)', () => {
  it('steps to the next day across month and year ends', () => {
    expect(nextDay('2026-01-31')).toBe('2026-02-01');
    expect(nextDay('2028-02-28')).toBe('2028-02-29');
    expect(nextDay('2026-12-31')).toBe('2027-01-01');
  });

  it('lists statement months newest first, across a year end', () => {
    expect(recentMonths(new Date('2026-02-15T23:59:59Z'), 4)).toEqual([
      '2026-02',
      '2026-01',
      '2025-12',
      '2025-11',
    ]);
  });

  it('takes the month in UTC, not local time', () => {
    expect(recentMonths(new Date('2026-03-01T00:30:00Z'), 1)).toEqual(['2026-03']);
    expect(recentMonths(new Date('2026-02-28T23:30:00-05:00'), 1)).toEqual(['2026-03']);
  });

  it('covers the 30 days ending today with an exclusive end', () => {
    const r = last30Days(new Date('2026-03-10T12:00:00Z'));
    expect(r.days).toHaveLength(30);
    expect(r.days[0]).toBe('2026-02-09');
    expect(r.days[29]).toBe('2026-03-10');
    expect(r.from).toBe('2026-02-09');
    expect(r.to).toBe('2026-03-11');
  });

  it('names months and formats times', () => {
    expect(monthLabel('2026-11')).toBe('November 2026');
    expect(formatTime('2026-11-04T13:05:59.999Z')).toBe('2026-11-04 13:05 UTC');
    expect(formatTime(null)).toBe('—');
  });

  it('lets a token expire at the end of the chosen day', () => {
    expect(endOfDayUtc('2026-12-31')).toBe('2026-12-31T23:59:59.000Z');
  });
});
