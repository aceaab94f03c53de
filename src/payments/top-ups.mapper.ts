import { formatAmount, formatRatio, money } from '../common/money/money.js';
import type { TopUpDto } from './dto/top-up.dto.js';
import { effectiveRefundedCash } from './payments.math.js';
import type { TopUp } from './top-ups.repository.js';

/** The customer's view; `admin` adds the admin's resolution note. */
const topUpView = (t: TopUp, admin: boolean): TopUpDto => ({
  id: t.id,
  accountId: t.accountId,
  status: t.status,
  credit: formatAmount(t.credit),
  price: formatAmount(t.price),
  currency: 'USD',
  promotion: t.promotion && {
    id: t.promotion.id,
    name: t.promotion.name,
    rate: formatRatio(money(t.promotion.rate)),
  },
  checkoutUrl: t.checkoutUrl,
  amountPaid: t.amountPaid === null ? null : formatAmount(t.amountPaid),
  refundedCash: formatAmount(effectiveRefundedCash(t.refundedCash, t.failedRefundCash)),
  refundedCredit: formatAmount(t.refundedCredit),
  disputedCredit: formatAmount(t.disputedCredit),
  reviewReason: t.reviewReason,
  resolution: t.resolution && {
    action: t.resolution.action,
    ...(admin ? { note: t.resolution.note } : {}),
    resolvedAt: t.resolution.resolvedAt.toISOString(),
  },
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
  paidAt: t.paidAt?.toISOString() ?? null,
});

export const toTopUpDto = (t: TopUp): TopUpDto => topUpView(t, false);
export const toAdminTopUpDto = (t: TopUp): TopUpDto => topUpView(t, true);
