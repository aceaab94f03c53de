import { isStripeId } from './dto/stripe-event.dto.js';

/*
 * The signature proves Stripe sent an event, not that every field has the type Stripe's
 * typings promise (or that it is fit for PostgreSQL): fields of data.object are read as
 * unknown, and only checked ids and escaped text are stored. Shared by the webhook handlers.
 */

export type WebhookOutcome =
  | 'credited'
  | 'already_paid'
  | 'already_in_review'
  | 'already_resolved'
  | 'needs_review'
  | 'awaiting_payment'
  | 'failed'
  | 'expired'
  | 'not_pending'
  | 'refund_debited'
  | 'refund_unchanged'
  | 'refund_recorded'
  | 'refund_reversed'
  | 'refund_ignored'
  | 'refund_unmatched'
  | 'dispute_debited'
  | 'dispute_reinstated'
  | 'dispute_recorded'
  | 'dispute_unchanged'
  | 'dispute_ignored'
  | 'unknown_top_up'
  | 'ignored';

/** What processing an event did, and to which top-up (stored with the event id). */
export interface Applied {
  outcome: WebhookOutcome;
  topUpId: string | null;
}

/**
 * An expandable reference (an id, or the expanded object carrying it): its id, null when
 * absent, or `malformed` when present but not a usable Stripe id.
 */
export type Ref = { id: string | null; malformed: false } | { id: null; malformed: true };
export function refOf(v: unknown): Ref {
  if (v === null || v === undefined) return { id: null, malformed: false };
  const id: unknown = typeof v === 'object' ? (v as { id?: unknown }).id : v;
  return isStripeId(id) ? { id, malformed: false } : { id: null, malformed: true };
}

/** Stripe metadata: string values by key; anything that is not an object has none. */
export const metadataOf = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** Only the string "usd", in any case: not " usd", "usd\0", 840 or ["usd"]. */
export const isUsd = (v: unknown): boolean => typeof v === 'string' && v.toLowerCase() === 'usd';

const SHOWN_MAX = 64;
/**
 * A value from Stripe as text for a review reason: short printable strings as they are,
 * other strings quoted with control characters escaped and cut at 64 characters, and other
 * values by their type. Never a NUL, which PostgreSQL refuses in text.
 */
export function shown(v: unknown): string {
  if (typeof v === 'string') {
    if (/^[\x21-\x7e]+$/.test(v) && v.length <= SHOWN_MAX) return v;
    const cut = v.length > SHOWN_MAX ? `${v.slice(0, SHOWN_MAX)}…` : v;
    return JSON.stringify(cut).replace(
      /[\p{Cc}\p{Cs}]/gu,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  }
  if (v === null || v === undefined) return `no value (${String(v)})`;
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** A short printable status from Stripe, or null (stored as the refund's or dispute's status). */
export const statusOf = (v: unknown): string | null =>
  typeof v === 'string' && /^[a-z_]{1,64}$/.test(v) ? v : null;
