import { describe, expect, it } from '@jest/globals';
import { DomainError } from '../common/errors/domain-error.js';
import { parseInstant, parseRange, planSummary } from './time-range.js';

const at = (v: string) => {
  const i = parseInstant(v);
  if (!i) throw new Error(`bad instant ${v}`);
  return i;
};

describe('parseInstant', () => {
  it.each([
    ['2026-11-01', '2026-11-01T00:00:00.000Z', true],
    ['2026-11-01T00:00:00Z', '2026-11-01T00:00:00.000Z', true],
    ['2026-11-01T02:00:00+02:00', '2026-11-01T00:00:00.000Z', true],
    ['2026-11-01T00:00:00.000001Z', '2026-11-01T00:00:00.000001Z', false],
    ['2026-11-01T12:30Z', '2026-11-01T12:30:00.000Z', false],
    ['2026-10-31T23:00:00-01:30', '2026-11-01T00:30:00.000Z', false],
    ['2026-11-05T10:00:00.123456Z', '2026-11-05T10:00:00.123456Z', false],
  ])('reads %s as %s (whole day: %s)', (v, iso, wholeDay) => {
    expect(at(v).iso).toBe(iso);
    expect(at(v).wholeDay).toBe(wholeDay);
  });

  it.each([
    '2026-11-01T10:00:00', // no zone: would mean the server's local time
    '2026-02-30',
    '2026-13-01',
    '2026-11-01T24:00:00Z',
    '2026-11-01T10:00:00.1234567Z',
    '2026-11-01 10:00:00Z',
    'yesterday',
    '1700000000',
    '0000-01-01',
  ])('refuses %p', (v) => {
    expect(parseInstant(v)).toBeNull();
  });
});

describe('parseRange', () => {
  it('names `to` when it is not after `from`', () => {
    try {
      parseRange('2026-11-02', '2026-11-01T23:59:59Z');
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).details[0].field).toBe('to');
    }
  });
});

describe('planSummary', () => {
  it('reads whole days only from the roll-ups', () => {
    expect(planSummary(at('2026-11-01'), at('2026-12-01'))).toEqual({
      daily: { fromDay: '2026-11-01', toDay: '2026-12-01' },
      events: [],
    });
    expect(planSummary(null, null)).toEqual({ daily: { fromDay: null, toDay: null }, events: [] });
  });

  it('reads the partial days at the ends from the events', () => {
    expect(planSummary(at('2026-11-01T12:00:00Z'), at('2026-11-04T06:00:00Z'))).toEqual({
      daily: { fromDay: '2026-11-02', toDay: '2026-11-04' },
      events: [
        { from: '2026-11-01T12:00:00.000Z', to: '2026-11-02T00:00:00.000Z' },
        { from: '2026-11-04T00:00:00.000Z', to: '2026-11-04T06:00:00.000Z' },
      ],
    });
  });

  it('reads a range inside one day from the events only', () => {
    expect(planSummary(at('2026-11-01T01:00:00Z'), at('2026-11-01T02:00:00Z'))).toEqual({
      daily: null,
      events: [{ from: '2026-11-01T01:00:00.000Z', to: '2026-11-01T02:00:00.000Z' }],
    });
    expect(planSummary(at('2026-11-01'), at('2026-11-01T02:00:00Z'))).toEqual({
      daily: null,
      events: [{ from: '2026-11-01T00:00:00.000Z', to: '2026-11-01T02:00:00.000Z' }],
    });
  });

  it('reads adjacent partial days without a whole day between them', () => {
    expect(planSummary(at('2026-11-01T12:00:00Z'), at('2026-11-02T12:00:00Z'))).toEqual({
      daily: null,
      events: [
        { from: '2026-11-01T12:00:00.000Z', to: '2026-11-02T00:00:00.000Z' },
        { from: '2026-11-02T00:00:00.000Z', to: '2026-11-02T12:00:00.000Z' },
      ],
    });
  });

  it('leaves an open end to the roll-ups', () => {
    expect(planSummary(at('2026-11-01T12:00:00Z'), null)).toEqual({
      daily: { fromDay: '2026-11-02', toDay: null },
      events: [{ from: '2026-11-01T12:00:00.000Z', to: '2026-11-02T00:00:00.000Z' }],
    });
  });
});
