import { formatAmount } from '../common/money/money.js';
import type { Account } from './accounts.repository.js';
import type { Adjustment } from './adjustments.repository.js';
import type { AccountDto, AdjustmentDto, MeDto } from './dto/account.dto.js';

export const toMeDto = (a: Account): MeDto => ({
  id: a.id,
  name: a.name,
  email: a.email,
  status: a.status,
  balance: formatAmount(a.balance),
  held: formatAmount(a.held),
  available: formatAmount(a.balance.minus(a.held)),
  creditLimit: formatAmount(a.creditLimit),
  currency: 'USD',
});

/** What the customer sees, and the console key prefix and timestamps admins see besides. */
export const toAccountDto = (a: Account): AccountDto => ({
  ...toMeDto(a),
  consoleKeyPrefix: a.consoleKeyPrefix,
  createdAt: a.createdAt.toISOString(),
  updatedAt: a.updatedAt.toISOString(),
});

export const toAdjustmentDto = (a: Adjustment): AdjustmentDto => ({
  id: a.id,
  accountId: a.accountId,
  amount: formatAmount(a.amount),
  reason: a.reason,
  idempotencyKey: a.idempotencyKey,
  ledgerEntryId: a.ledgerEntryId ?? '',
  balanceAfter: a.balanceAfter ? formatAmount(a.balanceAfter) : '',
  createdAt: a.createdAt.toISOString(),
});
