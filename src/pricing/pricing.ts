import type { Decimal } from 'decimal.js';
import { formatExact, Money, ZERO } from '../common/money/money.js';

export const BILLING_MODES = ['tokens', 'per_request', 'per_image'] as const;
export type BillingMode = (typeof BILLING_MODES)[number];

/** One price version from the catalog. Token prices are USD per 1M tokens. */
export interface PriceVersion {
  id: string;
  model: string;
  version: number;
  mode: BillingMode;
  inputText: Decimal | null;
  inputImage: Decimal | null;
  cachedInput: Decimal | null;
  outputText: Decimal | null;
  outputImage: Decimal | null;
  partialImageOutputTokens: number | null;
  perRequest: Decimal | null;
  perImage: Decimal | null;
}

export interface UsageInput {
  inputTokens: number;
  outputTokens: number;
  inputTokensDetails?: { textTokens?: number; imageTokens?: number; cachedTokens?: number };
  outputTokensDetails?: { textTokens?: number; imageTokens?: number };
}

export interface UsageEventInput {
  statusCode: number;
  errorCode?: string | null;
  moderated?: boolean;
  timedOut?: boolean;
  usage?: UsageInput | null;
  images?: number | null;
  partialImages?: number | null;
}

export type SkipReason = 'moderated' | 'upstream_error' | 'timeout' | 'no_output';

export type BreakdownUnit = 'per_1m_tokens' | 'per_request' | 'per_image';

/** `amount` is before the group ratio; all strings are exact decimals. */
export interface BreakdownLine {
  item: string;
  quantity: string;
  unitPrice: string;
  unit: BreakdownUnit;
  amount: string;
}

export type PricingResult =
  | { outcome: 'skipped'; reason: SkipReason; charge: Decimal }
  | {
      outcome: 'charged';
      charge: Decimal;
      subtotal: Decimal;
      ratio: Decimal;
      breakdown: BreakdownLine[];
      /** Billed quantity per line of the mode (see linesFor), zero lines included. */
      quantities: Decimal[];
    };

/** Usage that cannot be priced (the caller answers 400 naming `field`). */
export class PricingError extends Error {
  constructor(
    public readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PricingError';
  }
}

const MILLION = new Money(1_000_000);

/** The contract's skip rules, in order: the first that fits wins. */
export function skipReason(event: UsageEventInput, mode: BillingMode): SkipReason | null {
  if (event.errorCode === 'moderation_blocked' || event.moderated === true) return 'moderated';
  if (!(event.statusCode >= 200 && event.statusCode <= 299)) return 'upstream_error';
  if (event.timedOut === true && event.usage == null) return 'timeout';
  if (event.images === 0) return 'no_output';
  if (mode === 'tokens' && event.usage != null && event.usage.outputTokens === 0)
    return 'no_output';
  return null;
}

export function priceEvent(
  event: UsageEventInput,
  price: PriceVersion,
  ratio: Decimal,
): PricingResult {
  // A negative ratio would turn a charge into a credit: a caller bug, never usage.
  if (!ratio.isFinite() || ratio.lt(0)) throw new RangeError('ratio must be >= 0');
  const reason = skipReason(event, price.mode);
  if (reason !== null) return { outcome: 'skipped', reason, charge: ZERO };

  let quantities: Decimal[];
  switch (price.mode) {
    case 'tokens':
      quantities = tokenQuantities(event, price);
      break;
    case 'per_request':
      quantities = [new Money(1)];
      break;
    case 'per_image':
      quantities = [new Money(count('images', event.images ?? 1))];
      break;
  }
  const { subtotal, breakdown } = linesFor(price, quantities);
  // No rounding here: the charge keeps every digit; storage (scale 10) is the caller's concern.
  return {
    outcome: 'charged',
    charge: subtotal.times(ratio),
    subtotal,
    ratio,
    breakdown,
    quantities,
  };
}

/** A price mode's breakdown lines, in the order quantities are given and stored. */
const LINE_ITEMS: Record<BillingMode, ReadonlyArray<[string, PriceField, BreakdownUnit]>> = {
  tokens: [
    ['input_text_tokens', 'inputText', 'per_1m_tokens'],
    ['input_image_tokens', 'inputImage', 'per_1m_tokens'],
    ['cached_input_tokens', 'cachedInput', 'per_1m_tokens'],
    ['output_text_tokens', 'outputText', 'per_1m_tokens'],
    ['output_image_tokens', 'outputImage', 'per_1m_tokens'],
    ['partial_image_output_tokens', 'outputImage', 'per_1m_tokens'],
  ],
  per_request: [['request', 'perRequest', 'per_request']],
  per_image: [['image', 'perImage', 'per_image']],
};

/**
 * The priced lines for billed quantities (one per LINE_ITEMS entry of the price's mode): the
 * subtotal before the ratio, and the breakdown a customer sees (lines with a quantity; the
 * first line when none has one). Pure and exact, so a stored event's breakdown is rebuilt
 * from its price version and quantities to the digit (see breakdownOf).
 */
export function linesFor(
  price: PriceVersion,
  quantities: Decimal[],
): { subtotal: Decimal; breakdown: BreakdownLine[] } {
  const items = LINE_ITEMS[price.mode];
  if (quantities.length !== items.length)
    throw new RangeError(`${price.mode} takes ${items.length} quantities`);
  const priced = items.map(([item, field, unit], i) => {
    const quantity = quantities[i];
    // A price only has to exist when there are units to bill at it.
    const unitPrice = quantity.isZero() ? (price[field] ?? ZERO) : required(price, field);
    const gross = quantity.times(unitPrice);
    return {
      item,
      quantity,
      unitPrice,
      unit,
      amount: unit === 'per_1m_tokens' ? gross.div(MILLION) : gross,
    };
  });
  const subtotal = priced.reduce((sum, line) => sum.plus(line.amount), ZERO);
  const shown = priced.filter((line) => !line.quantity.isZero());
  const breakdown = (shown.length > 0 ? shown : priced.slice(0, 1)).map((line) => ({
    item: line.item,
    quantity: line.quantity.toFixed(0),
    unitPrice: formatExact(line.unitPrice),
    unit: line.unit,
    amount: formatExact(line.amount),
  }));
  return { subtotal, breakdown };
}

/** What an event stores of its billed quantities, beside its token and image counts. */
export interface StoredQuantities {
  inputTokens: number | string;
  outputTokens: number | string;
  images: number | string;
  /** Token lines when they differ from the default split (see storedLines); else null. */
  lines: string[] | null;
}

/**
 * The token lines worth storing: null when the quantities are the default split (all input
 * tokens as text, all output tokens as image, nothing cached or partial), which the counts
 * already say; the quantities otherwise. Other modes never need lines.
 */
export function storedLines(
  mode: BillingMode,
  quantities: Decimal[],
  counts: { inputTokens: number; outputTokens: number },
): string[] | null {
  if (mode !== 'tokens') return null;
  const plain = defaultTokenSplit(counts.inputTokens, counts.outputTokens);
  return quantities.every((q, i) => q.eq(plain[i])) ? null : quantities.map((q) => q.toFixed(0));
}

/** A stored event's breakdown, rebuilt from its price version: [] for a skipped event. */
export function breakdownOf(
  price: PriceVersion,
  outcome: string,
  stored: StoredQuantities,
): BreakdownLine[] {
  if (outcome === 'skipped') return [];
  let quantities: Decimal[];
  switch (price.mode) {
    case 'tokens':
      quantities = stored.lines
        ? stored.lines.map((q) => new Money(q))
        : defaultTokenSplit(stored.inputTokens, stored.outputTokens);
      break;
    case 'per_request':
      quantities = [new Money(1)];
      break;
    case 'per_image':
      quantities = [new Money(stored.images)];
      break;
  }
  return linesFor(price, quantities).breakdown;
}

const defaultTokenSplit = (input: number | string, output: number | string): Decimal[] => [
  new Money(input),
  ZERO,
  ZERO,
  ZERO,
  new Money(output),
  ZERO,
];

/** Billed token quantities in LINE_ITEMS.tokens order. */
function tokenQuantities(event: UsageEventInput, price: PriceVersion): Decimal[] {
  const usage = event.usage;
  if (usage == null) throw new PricingError('usage', 'is required for a tokens-priced model');

  const inputTotal = count('usage.inputTokens', usage.inputTokens);
  const inDetails = usage.inputTokensDetails;
  // Input defaults to text, output to image: that is where an unsplit remainder goes.
  const input = split('usage.inputTokensDetails', inputTotal, inDetails, 'text');
  const cached = count('usage.inputTokensDetails.cachedTokens', inDetails?.cachedTokens ?? 0);
  if (cached > inputTotal) {
    throw new PricingError(
      'usage.inputTokensDetails.cachedTokens',
      'must not exceed usage.inputTokens',
    );
  }
  // Cached tokens are part of inputTokens: taken from text first, then image.
  const cachedText = Math.min(cached, input.text);
  const cachedImage = cached - cachedText;

  const output = split(
    'usage.outputTokensDetails',
    count('usage.outputTokens', usage.outputTokens),
    usage.outputTokensDetails,
    'image',
  );
  const partials = count('partialImages', event.partialImages ?? 0);
  // A model without the setting charges nothing extra for streamed partial images.
  const perPartial = count('partialImageOutputTokens', price.partialImageOutputTokens ?? 0);
  return [
    new Money(input.text - cachedText),
    new Money(input.image - cachedImage),
    new Money(cached),
    new Money(output.text),
    new Money(output.image),
    new Money(partials).times(perPartial),
  ];
}

/**
 * Splits `total` tokens into text and image. One given kind leaves the rest to the other;
 * with both given, any unaccounted remainder goes to `fallback` so every token is billed.
 */
function split(
  field: string,
  total: number,
  details: { textTokens?: number; imageTokens?: number } | undefined,
  fallback: 'text' | 'image',
): { text: number; image: number } {
  const text =
    details?.textTokens == null ? null : count(`${field}.textTokens`, details.textTokens);
  const image =
    details?.imageTokens == null ? null : count(`${field}.imageTokens`, details.imageTokens);
  if ((text ?? 0) + (image ?? 0) > total) {
    throw new PricingError(
      field,
      `textTokens + imageTokens must not exceed ${field.replace('Details', '')}`,
    );
  }
  if (text === null && image === null) {
    return fallback === 'text' ? { text: total, image: 0 } : { text: 0, image: total };
  }
  if (text === null) return { text: total - (image ?? 0), image: image ?? 0 };
  if (image === null) return { text, image: total - text };
  const rest = total - text - image;
  return fallback === 'text' ? { text: text + rest, image } : { text, image: image + rest };
}

/** Counts are validated upstream; this guard keeps a bad one from ever reaching a charge. */
function count(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new PricingError(field, 'must be a non-negative integer');
  }
  return value;
}

type PriceField =
  | 'inputText'
  | 'inputImage'
  | 'cachedInput'
  | 'outputText'
  | 'outputImage'
  | 'perRequest'
  | 'perImage';

/** A missing price must never bill as zero: the model is not priced for this usage. */
function required(price: PriceVersion, field: PriceField): Decimal {
  const value = price[field];
  if (value === null)
    throw new PricingError('model', `${price.model} v${price.version} has no ${field} price`);
  return value;
}
