import { Decimal } from 'decimal.js';
import { Dec, ZERO } from './env.js';
import type { Fixture } from './fixture.js';
import type { Rng } from './rng.js';

// ---- events, priced from the contract ---------------------------------------------------------

/** The seeded catalog as the contract states it (USD per 1M tokens, or flat). */
const PRICE = {
  inputText: new Dec(8),
  cachedInput: new Dec(2),
  outputImage: new Dec(30),
  partialImageOutputTokens: 100,
  perRequest: new Dec('0.03'),
  perImage: new Dec('0.03'),
};
const MILLION = new Dec(1_000_000);

export type Outcome = 'charged' | 'skipped';

export interface PlannedEvent {
  requestId: string;
  token: number;
  account: number;
  /** The body, sent verbatim on every delivery (the soak drops it once sent). */
  json: string;
  outcome: Outcome;
  reason: string | null;
  charge: Dec;
}

interface EventBody {
  requestId: string;
  tokenId: string;
  model: string;
  statusCode: number;
  errorCode?: string;
  moderated?: boolean;
  timedOut?: boolean;
  usage?: {
    inputTokens: number;
    outputTokens: number;
    inputTokensDetails?: { cachedTokens: number };
  };
  images?: number;
  partialImages?: number;
  size?: string;
  quality?: string;
}

/**
 * A random event of the three seeded models, about 12% of them skipped for each of the
 * contract's reasons, with its outcome and exact charge worked out here (scale 10).
 */
export function planEvent(r: Rng, requestId: string, fx: Fixture, token: number): PlannedEvent {
  const tok = fx.tokens[token];
  const roll = r.next();
  const model = roll < 0.55 ? 'gpt-image-2' : roll < 0.78 ? 'gpt-image-2-all' : 'gpt-image-2-vip';
  const e: EventBody = { requestId, tokenId: tok.id, model, statusCode: 200 };
  if (model === 'gpt-image-2') {
    const inputTokens = r.int(0, 3000);
    e.usage = { inputTokens, outputTokens: r.int(100, 6500) };
    if (inputTokens > 0 && r.chance(0.3))
      e.usage.inputTokensDetails = { cachedTokens: r.int(0, inputTokens) };
    if (r.chance(0.2)) e.partialImages = r.int(1, 3);
    e.size = r.pick(['1024x1024', '1024x1536', '1536x1024']);
    e.quality = r.pick(['low', 'medium', 'high']);
  } else if (model === 'gpt-image-2-vip') {
    e.images = r.int(1, 4);
  }
  // Skips, one per kind (the first rule that fits wins, as the contract orders them).
  const skip = r.next();
  let reason: string | null = null;
  if (skip < 0.04) {
    e.statusCode = r.pick([500, 502, 429]);
    reason = 'upstream_error';
  } else if (skip < 0.06) {
    if (r.chance(0.5)) e.moderated = true;
    else e.errorCode = 'moderation_blocked';
    e.statusCode = r.pick([200, 400]);
    reason = 'moderated';
  } else if (skip < 0.08 && model !== 'gpt-image-2') {
    e.timedOut = true;
    reason = 'timeout';
  } else if (skip < 0.12) {
    if (model === 'gpt-image-2' && e.usage) e.usage.outputTokens = 0;
    else e.images = 0;
    reason = 'no_output';
  }
  let charge = ZERO;
  if (reason === null) {
    let subtotal: Dec;
    if (model === 'gpt-image-2' && e.usage) {
      const cached = e.usage.inputTokensDetails?.cachedTokens ?? 0;
      const outputImageTokens =
        e.usage.outputTokens + (e.partialImages ?? 0) * PRICE.partialImageOutputTokens;
      subtotal = PRICE.inputText
        .times(e.usage.inputTokens - cached)
        .plus(PRICE.cachedInput.times(cached))
        .plus(PRICE.outputImage.times(outputImageTokens))
        .div(MILLION);
    } else if (model === 'gpt-image-2-all') {
      subtotal = PRICE.perRequest;
    } else {
      subtotal = PRICE.perImage.times(e.images ?? 1);
    }
    charge = subtotal.times(tok.ratio).toDecimalPlaces(10, Decimal.ROUND_HALF_UP);
  }
  return {
    requestId,
    token,
    account: tok.account,
    json: JSON.stringify(e),
    outcome: reason === null ? 'charged' : 'skipped',
    reason,
    charge,
  };
}

// ---- holds, planned from the contract -----------------------------------------------------------

/** gpt-image-2's reference prices per image (USD) by size and quality, from the contract. */
const REFERENCE_PRICE: Record<string, Record<string, Dec>> = {
  '1024x1024': { low: new Dec('0.006'), medium: new Dec('0.053'), high: new Dec('0.211') },
  '1024x1536': { low: new Dec('0.005'), medium: new Dec('0.041'), high: new Dec('0.165') },
  '1536x1024': { low: new Dec('0.005'), medium: new Dec('0.041'), high: new Dec('0.165') },
};
/** gpt-image-2's seeded holdAmount: per image, when a request names no priced size/quality. */
const SEEDED_HOLD_AMOUNT = new Dec('0.25');

export interface PlannedHold {
  requestId: string;
  token: number;
  account: number;
  /** The authorize body (with the token's key), sent verbatim on every attempt. */
  json: string;
  /** The request as failures name it (model, n, size/quality), without the key. */
  what: string;
  /** Likely price × group ratio, rounded up at scale 10: what authorize must hold. */
  amount: Dec;
  /** Abandoned work: the gateway releases the hold and never sends a usage event. */
  abandoned: boolean;
}

interface AuthorizeBody {
  key: string;
  model: string;
  requestId: string;
  n?: number;
  size?: string;
  quality?: string;
}

/**
 * The authorize the gateway sends before the event's request, with n, size and quality that
 * fit the event (gpt-image-2 names its size and quality four times in five, else it is held
 * at the seeded holdAmount; gpt-image-2-vip asks for the images it got, at least one), and
 * the hold it must get: per_request 0.03, per_image 0.03 × n, tokens the reference price
 * (or holdAmount) × n, times the group ratio.
 */
export function planHold(r: Rng, e: PlannedEvent, fx: Fixture, abandoned: boolean): PlannedHold {
  const ev = JSON.parse(e.json) as EventBody;
  const tok = fx.tokens[e.token];
  const b: AuthorizeBody = { key: tok.key, model: ev.model, requestId: e.requestId };
  let price: Dec;
  if (ev.model === 'gpt-image-2') {
    b.n = r.chance(0.8) ? 1 : 2;
    if (ev.size && ev.quality && r.chance(0.8)) {
      b.size = ev.size;
      b.quality = ev.quality;
    }
    const ref = b.size && b.quality ? REFERENCE_PRICE[b.size]?.[b.quality] : undefined;
    price = (ref ?? SEEDED_HOLD_AMOUNT).times(b.n);
  } else if (ev.model === 'gpt-image-2-vip') {
    b.n = Math.max(1, ev.images ?? 1);
    price = PRICE.perImage.times(b.n);
  } else {
    if (r.chance(0.5)) b.n = 1;
    price = PRICE.perRequest;
  }
  return {
    requestId: e.requestId,
    token: e.token,
    account: e.account,
    json: JSON.stringify(b),
    what: `${b.model} n=${b.n ?? '-'} ${b.size ?? '-'}/${b.quality ?? '-'}`,
    amount: price.times(tok.ratio).toDecimalPlaces(10, Decimal.ROUND_UP),
    abandoned,
  };
}

/** A hold planned for every request; those in `abandoned` are released, never delivered. */
export function planHolds(
  r: Rng,
  planned: readonly PlannedEvent[],
  fx: Fixture,
  abandoned: ReadonlySet<string>,
): Map<string, PlannedHold> {
  return new Map(planned.map((e) => [e.requestId, planHold(r, e, fx, abandoned.has(e.requestId))]));
}

/**
 * Accounts whose opening credit covers every charge and every hold planned on them at once:
 * there balance − held − hold stays ≥ 0 in any order, so authorize may never refuse them.
 */
export function accountsNeverShort(
  fx: Fixture,
  events: readonly PlannedEvent[],
  holds: Iterable<PlannedHold>,
): Set<number> {
  const need = fx.accounts.map(() => ZERO);
  for (const e of events) need[e.account] = need[e.account].plus(e.charge);
  for (const h of holds) need[h.account] = need[h.account].plus(h.amount);
  return new Set(fx.accounts.flatMap((a, i) => (a.credit.gte(need[i]) ? [i] : [])));
}
