import type { MeDto } from '../accounts/dto/account.dto.js';
import type { Decimal } from 'decimal.js';
import { formatAmount } from '../common/money/money.js';
import type { GroupDto } from '../groups/dto/group.dto.js';
import type { PromotionDto } from '../payments/dto/promotion.dto.js';
import type {
  ActivePromotionDto,
  InviteDto,
  InviteInfoDto,
  SelectableGroupDto,
  SessionDto,
  TopUpPriceDto,
} from './dto/console.dto.js';
import type { Invite } from './invites.repository.js';

export const toSessionDto = (
  s: { email: string; expiresAt: Date },
  account: MeDto,
): SessionDto => ({
  email: s.email,
  expiresAt: s.expiresAt.toISOString(),
  account,
});

export const toSelectableGroupDto = (g: GroupDto): SelectableGroupDto => ({
  name: g.name,
  ratio: g.ratio,
  description: g.description,
  isDefault: g.isDefault,
});

export const toActivePromotionDto = (p: PromotionDto): ActivePromotionDto => ({
  id: p.id,
  name: p.name,
  rate: p.rate,
  minCredit: p.minCredit,
  endsAt: p.endsAt,
});

export const toTopUpPriceDto = (
  credit: Decimal,
  price: Decimal,
  promotion: PromotionDto | null,
): TopUpPriceDto => ({
  credit: formatAmount(credit),
  price: formatAmount(price),
  currency: 'USD',
  promotion: promotion && toActivePromotionDto(promotion),
});

/** The invite with its link (the token only in the link, shown only here). */
export const toInviteDto = (i: Invite, inviteUrl: string): InviteDto => ({
  accountId: i.accountId,
  email: i.email,
  inviteUrl,
  expiresAt: i.expiresAt.toISOString(),
});

export const toInviteInfoDto = (i: Invite, account: { name: string }): InviteInfoDto => ({
  email: i.email,
  accountName: account.name,
  expiresAt: i.expiresAt.toISOString(),
});
