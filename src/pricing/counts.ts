import type { UsageEventInput } from './pricing.js';

/** What one event adds to the usage counts of roll-ups, summaries and exports. */
export interface UsageCounts {
  inputTokens: number;
  outputTokens: number;
  /** Images billed: those returned (1 when the event says none) when billable, else 0. */
  images: number;
}

/**
 * The one rule for what an event counts: the tokens it reports (0 without usage) and, when
 * it is billable (charged, or held for review), the images it returned, 1 when it names none.
 */
export function usageCounts(event: UsageEventInput, billable: boolean): UsageCounts {
  return {
    inputTokens: event.usage?.inputTokens ?? 0,
    outputTokens: event.usage?.outputTokens ?? 0,
    images: billable ? (event.images ?? 1) : 0,
  };
}
