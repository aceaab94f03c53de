import type { Decimal } from 'decimal.js';
import { formatAmount } from '../common/money/money.js';
import type {
  CreatedRedemptionBatchDto,
  RedemptionBatchDto,
  RedemptionDto,
} from './dto/redemption.dto.js';
import type { RedemptionBatch } from './redemptions.repository.js';

export const toRedemptionBatchDto = (b: RedemptionBatch): RedemptionBatchDto => ({
  batchId: b.id,
  name: b.name,
  credit: formatAmount(b.credit),
  count: b.count,
  redeemed: b.redeemed,
  disabled: b.disabled,
  expiresAt: b.expiresAt?.toISOString() ?? null,
  disabledAt: b.disabledAt?.toISOString() ?? null,
  createdAt: b.createdAt.toISOString(),
});

/** A new batch with its codes: the only answer that ever shows them. */
export const toCreatedRedemptionBatchDto = (
  b: RedemptionBatch,
  codes: string[],
): CreatedRedemptionBatchDto => ({
  batchId: b.id,
  name: b.name,
  credit: formatAmount(b.credit),
  count: b.count,
  expiresAt: b.expiresAt?.toISOString() ?? null,
  codes,
});

export const toRedemptionDto = (r: { credit: Decimal; balance: Decimal }): RedemptionDto => ({
  credit: formatAmount(r.credit),
  balance: formatAmount(r.balance),
});
