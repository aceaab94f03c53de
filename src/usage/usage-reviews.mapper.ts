import { formatExact } from '../common/money/money.js';
import type { UsageReviewDto } from './dto/usage-review.dto.js';
import { toUsagePricingDto } from './usage.mapper.js';
import type { UsageRecord } from './usage.repository.js';

export const toUsageReviewDto = (r: UsageRecord): UsageReviewDto => ({
  requestId: r.requestId,
  accountId: r.accountId,
  tokenId: r.tokenId,
  model: r.model,
  outcome: r.outcome,
  // As priced, not bookedCharge: the amount an approval books (or booked).
  charge: formatExact(r.charge),
  ...toUsagePricingDto(r),
  reviewedAt: r.reviewedAt?.toISOString() ?? null,
});
