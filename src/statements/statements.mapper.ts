import { formatAmount, formatExact, formatRatio } from '../common/money/money.js';
import { csvLine, inertText } from './csv.js';
import type { LedgerEntryDto } from './dto/ledger-entry.dto.js';
import type { StatementDto } from './dto/statement.dto.js';
import type { UsageItemDto, UsageTotalsDto } from './dto/usage-view.dto.js';
import type { Statement } from './statement-math.js';
import type { LedgerLine } from './statements.repository.js';
import type { UsageItem, UsageTotals } from './usage-views.repository.js';

export const toLedgerEntryDto = (e: LedgerLine): LedgerEntryDto => ({
  id: e.id,
  type: e.type,
  amount: formatAmount(e.amount),
  balanceAfter: formatAmount(e.balanceAfter),
  description: e.description,
  reference: e.reference,
  createdAt: e.createdAt.toISOString(),
});

export const toUsageItemDto = (u: UsageItem): UsageItemDto => ({
  requestId: u.requestId,
  tokenId: u.tokenId,
  tokenName: u.tokenName,
  model: u.model,
  outcome: u.outcome,
  reason: u.reason,
  charge: formatExact(u.charge),
  group: u.group,
  ratio: formatRatio(u.ratio),
  priceVersion: u.priceVersion,
  breakdown: u.breakdown,
  occurredAt: u.occurredAt.toISOString(),
  recordedAt: u.recordedAt.toISOString(),
});

export const toUsageTotalsDto = (t: UsageTotals): UsageTotalsDto => ({
  requests: t.requests,
  charged: t.charged,
  skipped: t.skipped,
  review: t.review,
  inputTokens: t.inputTokens,
  outputTokens: t.outputTokens,
  images: t.images,
  charge: formatAmount(t.charge),
});

export const toStatementDto = (s: Statement): StatementDto => ({
  period: s.period,
  currency: s.currency,
  openingBalance: formatAmount(s.openingBalance),
  topUps: {
    count: s.topUps.count,
    credit: formatAmount(s.topUps.credit),
    cashPaid: formatAmount(s.topUps.cashPaid),
  },
  redemptions: { count: s.redemptions.count, credit: formatAmount(s.redemptions.credit) },
  usage: {
    requests: s.usage.requests,
    charged: s.usage.charged,
    skipped: s.usage.skipped,
    review: s.usage.review,
    charge: formatAmount(s.usage.charge),
    byModel: s.usage.byModel.map((m) => ({
      model: m.model,
      requests: m.requests,
      charged: m.charged,
      skipped: m.skipped,
      review: m.review,
      charge: formatAmount(m.charge),
    })),
  },
  refunds: formatAmount(s.refunds),
  disputes: formatAmount(s.disputes),
  adjustments: formatAmount(s.adjustments),
  closingBalance: formatAmount(s.closingBalance),
});

/** Column names of the usage export: stable, part of the contract. */
export const USAGE_CSV_COLUMNS = [
  'request_id',
  'token_id',
  'token_name',
  'model',
  'outcome',
  'reason',
  'charge',
  'group',
  'ratio',
  'price_version',
  'input_tokens',
  'output_tokens',
  'images',
  'occurred_at',
  'recorded_at',
] as const;

export const USAGE_CSV_HEADER = csvLine(USAGE_CSV_COLUMNS);

/**
 * One event as a CSV line; the charge keeps every digit stored. Every text field, not only
 * the customer's own (a gateway's request id can be `=HYPERLINK(...)` too), is made inert.
 */
export const toUsageCsvLine = (u: UsageItem): string =>
  csvLine([
    inertText(u.requestId),
    inertText(u.tokenId),
    inertText(u.tokenName),
    inertText(u.model),
    inertText(u.outcome),
    inertText(u.reason ?? ''),
    formatExact(u.charge),
    inertText(u.group),
    formatRatio(u.ratio),
    String(u.priceVersion),
    String(u.inputTokens),
    String(u.outputTokens),
    String(u.images),
    u.occurredAt.toISOString(),
    u.recordedAt.toISOString(),
  ]);
