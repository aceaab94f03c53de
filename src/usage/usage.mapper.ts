import type { Decimal } from 'decimal.js';
import { formatExact, formatRatio, ZERO } from '../common/money/money.js';
import {
  ArchivedIngestResponseDto,
  BatchResultDto,
  IngestResponseDto,
  UsageRecordDto,
} from './dto/usage-event.dto.js';
import type { UsageRecord } from './usage.repository.js';
import type { EventOutcome } from './usage.service.js';

/** What the customer was charged: review and voided events show 0 until approved. */
export const bookedCharge = (r: { outcome: string; charge: Decimal }): Decimal =>
  r.outcome === 'review' || r.outcome === 'voided' ? ZERO : r.charge;

/** How an event was priced and when: the fields a usage record and a usage review share. */
export const toUsagePricingDto = (
  r: UsageRecord,
): Pick<
  UsageRecordDto,
  'group' | 'ratio' | 'priceVersion' | 'breakdown' | 'occurredAt' | 'recordedAt'
> => ({
  group: r.group,
  ratio: formatRatio(r.ratio),
  priceVersion: r.priceVersion,
  breakdown: r.breakdown,
  occurredAt: r.occurredAt.toISOString(),
  recordedAt: r.recordedAt.toISOString(),
});

export const toUsageRecordDto = (r: UsageRecord): UsageRecordDto => ({
  requestId: r.requestId,
  tokenId: r.tokenId,
  model: r.model,
  outcome: r.outcome,
  reason: r.reason,
  charge: formatExact(bookedCharge(r)),
  ...toUsagePricingDto(r),
});

export const toIngestResponseDto = (r: UsageRecord, duplicate: boolean): IngestResponseDto => ({
  ...toUsageRecordDto(r),
  duplicate,
});

export const toArchivedIngestResponseDto = (
  o: Extract<EventOutcome, { kind: 'archived' }>,
): ArchivedIngestResponseDto => ({
  requestId: o.archived.requestId,
  tokenId: o.event.tokenId,
  model: o.event.model,
  outcome: o.archived.outcome,
  charge: formatExact(bookedCharge(o.archived)),
  recordedAt: o.archived.recordedAt.toISOString(),
  duplicate: true,
  archived: true,
});

export function toBatchResultDto(o: EventOutcome): BatchResultDto {
  if (o.kind === 'archived') {
    return {
      requestId: o.archived.requestId,
      outcome: 'duplicate',
      charge: formatExact(bookedCharge(o.archived)),
    };
  }
  if (o.kind === 'rejected') {
    const error: NonNullable<BatchResultDto['error']> = {
      code: o.error.code,
      message: o.error.message,
    };
    if (o.error.details.length > 0) error.details = o.error.details;
    return { requestId: o.requestId, outcome: 'rejected', error };
  }
  const r = o.record;
  const result: BatchResultDto = {
    requestId: r.requestId,
    outcome: o.duplicate ? 'duplicate' : r.outcome,
    charge: formatExact(bookedCharge(r)),
  };
  if (r.reason) result.reason = r.reason;
  return result;
}
