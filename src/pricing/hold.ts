import { Decimal } from 'decimal.js';
import { MONEY_SCALE, Money } from '../common/money/money.js';
import type { BillingMode } from './pricing.js';

/** What a hold is computed from: the price version's flat prices and per-image hold figures. */
export interface HoldPrice {
  mode: BillingMode;
  perRequest: Decimal | null;
  perImage: Decimal | null;
  holdAmount: Decimal | null;
  referencePrices: { size: string; quality: string; price: Decimal }[];
}

export interface HoldRequest {
  /** Images asked for; 1 when the request names none. */
  n: number;
  size?: string | null;
  quality?: string | null;
}

/**
 * The likely price of a request, times the group ratio: what authorize sets aside.
 * per_request: perRequest; per_image: perImage × n; tokens: the reference price for the
 * request's size and quality × n, or the version's holdAmount × n when it names none that is
 * priced. Rounded up at the ledger's scale, so a hold never falls short of its own price.
 */
export function holdAmountFor(price: HoldPrice, req: HoldRequest, ratio: Decimal): Decimal {
  if (!Number.isSafeInteger(req.n) || req.n < 1)
    throw new RangeError('n must be a positive integer');
  if (!ratio.isFinite() || ratio.lt(0)) throw new RangeError('ratio must be >= 0');
  const n = new Money(req.n);
  let base: Decimal;
  switch (price.mode) {
    case 'per_request':
      base = need(price.perRequest, 'perRequest');
      break;
    case 'per_image':
      base = need(price.perImage, 'perImage').times(n);
      break;
    case 'tokens': {
      const ref = price.referencePrices.find(
        (r) => r.size === req.size && r.quality === req.quality,
      );
      base = (ref ? ref.price : need(price.holdAmount, 'holdAmount')).times(n);
      break;
    }
  }
  return base.times(ratio).toDecimalPlaces(MONEY_SCALE, Decimal.ROUND_UP);
}

function need(v: Decimal | null, field: string): Decimal {
  if (v === null) throw new RangeError(`price version has no ${field}`);
  return v;
}
