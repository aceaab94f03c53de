import type Stripe from 'stripe';
import type { ErrorDetail } from '../../common/errors/domain-error.js';
import { validationError } from '../../common/http/validation.js';

/** The Stripe events that change a top-up; every other type is recorded and ignored. */
export const HANDLED_EVENT_TYPES = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
  'charge.refunded',
  'charge.refund.updated',
  'refund.updated',
  'refund.failed',
  'charge.dispute.created',
  'charge.dispute.funds_withdrawn',
  'charge.dispute.funds_reinstated',
  'charge.dispute.closed',
] as const;

export const isHandledType = (type: string): boolean =>
  (HANDLED_EVENT_TYPES as readonly string[]).includes(type);

/** Longest Stripe object id stored or looked up (event, session, PaymentIntent, charge ids). */
export const MAX_STRIPE_ID_LENGTH = 255;

/** Printable ASCII without spaces: what every Stripe id looks like ("evt_1Nf…", "pi_3Ab…"). */
const STRIPE_ID = new RegExp(`^[\\x21-\\x7e]{1,${MAX_STRIPE_ID_LENGTH}}$`);

/**
 * A Stripe id fit to be stored, indexed and compared: a string of 1..255 printable ASCII
 * characters (no NUL or other control character, nothing a btree index row cannot hold).
 */
export const isStripeId = (v: unknown): v is string => typeof v === 'string' && STRIPE_ID.test(v);

/** Control characters (PostgreSQL refuses NUL in text) and unpaired UTF-16 surrogates. */
const UNSTORABLE = /[\p{Cc}\p{Cs}]/u;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks that a verified webhook body is a Stripe event before anything is stored: an object
 * with a string `id` (a Stripe id, see isStripeId) and a non-empty string `type` without
 * control characters; for the types handled, `data.object` must be an object. A well-formed
 * event of any other type passes (it is recorded and ignored). The signature proves who sent
 * the bytes, not that they are an event: anything else is refused with 400 validation_failed.
 */
export function parseStripeEvent(raw: unknown): Stripe.Event {
  if (!isRecord(raw)) {
    throw validationError([
      { field: 'body', message: 'the signed body must be a Stripe event object' },
    ]);
  }
  const details: ErrorDetail[] = [];
  const { id, type, data } = raw;
  if (typeof id !== 'string') {
    details.push({ field: 'id', message: 'id must be a string' });
  } else if (!isStripeId(id)) {
    details.push({
      field: 'id',
      message: `id must be 1 to ${MAX_STRIPE_ID_LENGTH} printable ASCII characters`,
    });
  }
  if (typeof type !== 'string') {
    details.push({ field: 'type', message: 'type must be a string' });
  } else if (type.length === 0 || UNSTORABLE.test(type)) {
    details.push({
      field: 'type',
      message: 'type must be a non-empty string without control characters',
    });
  } else if (isHandledType(type)) {
    if (!isRecord(data)) {
      details.push({ field: 'data', message: `data must be an object for ${type}` });
    } else if (!isRecord(data.object)) {
      details.push({ field: 'data.object', message: `data.object must be an object for ${type}` });
    }
  }
  if (details.length > 0) throw validationError(details);
  return raw as unknown as Stripe.Event;
}
