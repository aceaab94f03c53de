/** Dates in the console are UTC, like statement periods and the API's timestamps. */

const pad = (n: number): string => String(n).padStart(2, '0');

export const utcDay = (d: Date): string =>
  `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;

export const utcMonth = (d: Date): string => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;

/** The day after a YYYY-MM-DD day. */
export function nextDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return utcDay(d);
}

/** `count` statement periods, newest first, ending with the month of `now`. */
export function recentMonths(now: Date, count: number): string[] {
  const out: string[] = [];
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  for (let i = 0; i < count; i++) {
    out.push(utcMonth(d));
    d.setUTCMonth(d.getUTCMonth() - 1);
  }
  return out;
}

/** "November 2026" for "2026-11". */
export function monthLabel(period: string): string {
  const [y, m] = period.split('-').map((p) => Number.parseInt(p, 10));
  const names = [
    'January',
    'February',
    'March',
    'April',
    'May',
    'June',
    'July',
    'August',
    'September',
    'October',
    'November',
    'December',
  ];
  return `${names[m - 1] ?? '?'} ${y}`;
}

/** The 30 days ending today: every day key, and the summary range that covers them. */
export function last30Days(now: Date): { days: string[]; from: string; to: string } {
  const days: string[] = [];
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  d.setUTCDate(d.getUTCDate() - 29);
  for (let i = 0; i < 30; i++) {
    days.push(utcDay(d));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return { days, from: days[0], to: nextDay(days[29]) };
}

/** "2026-11-04 13:05 UTC" (or "—" for none). */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${utcDay(d)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** A token's expiry from an "Expires" date: usable through the end of that day (UTC). */
export const endOfDayUtc = (day: string): string => `${day}T23:59:59.000Z`;
