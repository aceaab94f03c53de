import { registerDecorator, ValidationOptions } from 'class-validator';
import { invalid } from '../common/errors/domain-error.js';

/**
 * Times the usage views take: a UTC date (`2026-11-01`, its midnight) or an ISO-8601 date-time
 * with `Z` or an offset (`2026-11-01T12:00:00Z`), up to microseconds (PostgreSQL's precision).
 * A date-time without a zone is refused: it would mean the server's local time.
 */
const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

const DAY_MS = 86_400_000;

export interface Instant {
  /** Canonical UTC form, passed to PostgreSQL as is and echoed in responses. */
  iso: string;
  /** Milliseconds since the epoch, and the microseconds below them (0..999). */
  ms: number;
  micros: number;
  /** UTC midnight exactly. */
  wholeDay: boolean;
  /** The UTC day it falls in, `YYYY-MM-DD`. */
  day: string;
}

export function parseInstant(value: string): Instant | null {
  const m = INSTANT.exec(value);
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    return null;
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null; // e.g. 2026-02-30
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const digits = frac.padEnd(6, '0');
  date.setUTCHours(hour, minute - offsetMinutes, second, Number(digits.slice(0, 3)));
  const ms = date.getTime();
  if (Number.isNaN(ms)) return null;
  const micros = Number(digits.slice(3));
  const base = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return {
    iso: micros === 0 ? base : `${base.slice(0, -1)}${String(micros).padStart(3, '0')}Z`,
    ms,
    micros,
    wholeDay: micros === 0 && ((ms % DAY_MS) + DAY_MS) % DAY_MS === 0,
    day: base.slice(0, 10),
  };
}

export const isBefore = (a: Instant, b: Instant): boolean =>
  a.ms < b.ms || (a.ms === b.ms && a.micros < b.micros);

export function dayStart(day: string): string {
  return `${day}T00:00:00.000Z`;
}

export function nextDay(day: string): string {
  const d = new Date(dayStart(day));
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** A half-open range [from, to) on recorded_at; null bounds are open. */
export interface TimeRange {
  from: string | null;
  to: string | null;
}

/** Parses the `from`/`to` pair of a usage query; `to` must come after `from`. */
export function parseRange(
  from: string | undefined,
  to: string | undefined,
): {
  from: Instant | null;
  to: Instant | null;
} {
  const f = from === undefined ? null : parseInstant(from);
  const t = to === undefined ? null : parseInstant(to);
  // The DTO validated both already; a null here means a caller skipped it.
  if (from !== undefined && !f) throw invalid('from', INSTANT_MESSAGE('from'));
  if (to !== undefined && !t) throw invalid('to', INSTANT_MESSAGE('to'));
  if (f && t && !isBefore(f, t)) throw invalid('to', 'to must be later than from');
  return { from: f, to: t };
}

/**
 * How a usage summary reads a range: whole UTC days from the daily roll-ups, the partial days
 * at either end (if any) from the events themselves. `daily` null: no whole day inside.
 */
export interface SummaryPlan {
  daily: { fromDay: string | null; toDay: string | null } | null;
  events: { from: string; to: string }[];
}

export function planSummary(from: Instant | null, to: Instant | null): SummaryPlan {
  if (from && to && !from.wholeDay && !to.wholeDay && from.day === to.day) {
    return { daily: null, events: [{ from: from.iso, to: to.iso }] };
  }
  const events: { from: string; to: string }[] = [];
  let fromDay: string | null = null;
  let toDay: string | null = null;
  if (from) {
    fromDay = from.wholeDay ? from.day : nextDay(from.day);
    if (!from.wholeDay) events.push({ from: from.iso, to: dayStart(fromDay) });
  }
  if (to) {
    toDay = to.day;
    if (!to.wholeDay) events.push({ from: dayStart(to.day), to: to.iso });
  }
  const daily = fromDay !== null && toDay !== null && fromDay >= toDay ? null : { fromDay, toDay };
  return { daily, events };
}

const INSTANT_MESSAGE = (field: string): string =>
  `${field} must be a UTC date (2026-11-01) or an ISO-8601 date-time with Z or an offset`;

/** Validates a `from`/`to` query value (see INSTANT). */
export function IsInstant(validationOptions?: ValidationOptions) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'isInstant',
      target: object.constructor,
      propertyName,
      options: validationOptions,
      validator: {
        validate(value: unknown): boolean {
          return typeof value === 'string' && value.length <= 40 && parseInstant(value) !== null;
        },
        defaultMessage(): string {
          return INSTANT_MESSAGE(propertyName);
        },
      },
    });
  };
}
