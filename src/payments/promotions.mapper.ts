import { formatAmount, formatRatio } from '../common/money/money.js';
import type { PromotionDto, PromotionRefDto } from './dto/promotion.dto.js';
import type { Promotion } from './promotions.repository.js';

export const toPromotionDto = (p: Promotion): PromotionDto => ({
  id: p.id,
  name: p.name,
  rate: formatRatio(p.rate),
  startsAt: p.startsAt?.toISOString() ?? null,
  endsAt: p.endsAt?.toISOString() ?? null,
  minCredit: formatAmount(p.minCredit),
  active: p.active,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});

export const toPromotionRef = (p: Promotion): PromotionRefDto => ({
  id: p.id,
  name: p.name,
  rate: formatRatio(p.rate),
});
