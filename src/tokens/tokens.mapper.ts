import type { Decimal } from 'decimal.js';
import { formatAmount, formatExact, formatRatio } from '../common/money/money.js';
import type { AuthorizeHoldDto } from '../holds/dto/hold.dto.js';
import type { AuthorizeResultDto, DenyReason, TokenDto, TokenWithKeyDto } from './dto/token.dto.js';
import type { AuthorizeFacts, Token } from './tokens.repository.js';

export const toTokenDto = (t: Token): TokenDto => ({
  id: t.id,
  name: t.name,
  group: t.group,
  keyPrefix: t.keyPrefix,
  status: t.status,
  expiresAt: t.expiresAt?.toISOString() ?? null,
  spendLimit: t.spendLimit === null ? null : formatAmount(t.spendLimit),
  spent: formatAmount(t.spent),
  held: formatAmount(t.held),
  allowedModels: t.allowedModels,
  createdAt: t.createdAt.toISOString(),
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
});

/** The answer to a create: the only time the key itself is shown. */
export const toTokenWithKeyDto = (t: Token, key: string): TokenWithKeyDto => ({
  ...toTokenDto(t),
  key,
});

export const toDeniedDto = (reason: DenyReason): AuthorizeResultDto => ({
  allowed: false,
  reason,
});

/** A hold as authorize answers it, whether placed now or found from an earlier authorize. */
export const toAuthorizeHoldDto = (
  requestId: string,
  h: { amount: Decimal; expiresAt: Date },
): AuthorizeHoldDto => ({
  requestId,
  amount: formatExact(h.amount),
  expiresAt: h.expiresAt.toISOString(),
});

/** `balance` and `held` are the account's as they stand after the hold, if one was placed. */
export const toAllowedDto = (
  f: AuthorizeFacts,
  balance: Decimal,
  held: Decimal,
  hold: AuthorizeHoldDto | null,
): AuthorizeResultDto => ({
  allowed: true,
  tokenId: f.tokenId,
  accountId: f.accountId,
  group: f.group,
  ratio: formatRatio(f.ratio),
  balance: formatAmount(balance),
  available: formatAmount(balance.minus(held)),
  hold,
});
