import { nextDay } from './dates.js';

export interface UsageFilters {
  /** First day included, YYYY-MM-DD (UTC). */
  from?: string;
  /** Last day included, YYYY-MM-DD (UTC); the API's `to` is the next day (exclusive). */
  to?: string;
  model?: string;
  tokenId?: string;
  outcome?: string;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The API query of a set of filters (empty ones left out). */
export function usageParams(f: UsageFilters, page: { limit?: number; cursor?: string } = {}) {
  const q = new URLSearchParams();
  if (f.from && DAY.test(f.from)) q.set('from', f.from);
  if (f.to && DAY.test(f.to)) q.set('to', nextDay(f.to));
  if (f.model) q.set('model', f.model);
  if (f.tokenId) q.set('tokenId', f.tokenId);
  if (f.outcome) q.set('outcome', f.outcome);
  if (page.limit !== undefined) q.set('limit', String(page.limit));
  if (page.cursor) q.set('cursor', page.cursor);
  return q;
}

/** GET /v1/me/usage?… */
export function usageListUrl(f: UsageFilters, page: { limit?: number; cursor?: string } = {}) {
  const q = usageParams(f, page).toString();
  return `/v1/me/usage${q ? `?${q}` : ''}`;
}

/** The Download CSV link: the same filters, as GET /v1/me/usage/export (the cookie goes along). */
export function usageCsvUrl(f: UsageFilters): string {
  const q = usageParams(f).toString();
  return `/v1/me/usage/export${q ? `?${q}` : ''}`;
}

/** The filters as the page's own query string (so a reload or a shared link keeps them). */
export function filtersToSearch(f: UsageFilters): string {
  const q = new URLSearchParams();
  for (const k of ['from', 'to', 'model', 'tokenId', 'outcome'] as const) {
    const v = f[k];
    if (v) q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function filtersFromSearch(search: string): UsageFilters {
  const q = new URLSearchParams(search);
  const f: UsageFilters = {};
  for (const k of ['from', 'to', 'model', 'tokenId', 'outcome'] as const) {
    const v = q.get(k);
    if (v) f[k] = v;
  }
  return f;
}

const REASONS: Record<string, string> = {
  moderated: 'Blocked by moderation',
  upstream_error: 'Upstream error',
  timeout: 'Timed out',
  no_output: 'No output',
  above_review_limit: 'Above the review limit',
};

/** Why an event was not billed, in words ("" when it was). */
export const reasonLabel = (reason: string | null): string =>
  reason === null ? '' : (REASONS[reason] ?? reason);

const OUTCOMES: Record<string, string> = {
  charged: 'Charged',
  skipped: 'Skipped (not billed)',
  review: 'In review (not billed yet)',
  voided: 'Voided (not billed)',
};

export const outcomeLabel = (outcome: string): string => OUTCOMES[outcome] ?? outcome;
