import { formatExact, formatRatio } from '../common/money/money.js';
import type { UsageReviewDto } from './dto/usage-review.dto.js';
import type { UsageRecord } from './usage.repository.js';

export const toUsageReviewDto = (r: UsageRecord): UsageReviewDto => ({
  requestId: r.requestId,
  accountId: r.accountId,
  tokenId: r.tokenId,
  model: r.model,
  outcome: r.outcome,
  charge: formatExact(r.charge),
  group: r.group,
  ratio: formatRatio(r.ratio),
  priceVersion: r.priceVersion,
  breakdown: r.breakdown,
  occurredAt: r.occurredAt.toISOString(),
  recordedAt: r.recordedAt.toISOString(),
  reviewedAt: r.reviewedAt?.toISOString() ?? null,
});
