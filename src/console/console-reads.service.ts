import { Inject, Injectable } from '@nestjs/common';
import { formatAmount, formatRatio, money } from '../common/money/money.js';
import type { Page } from '../common/pagination/pagination.js';
import type { GroupDto } from '../groups/dto/group.dto.js';
import { GroupsService } from '../groups/groups.service.js';
import type { PromotionDto } from '../payments/dto/promotion.dto.js';
import { topUpPrice } from '../payments/payments.math.js';
import { PromotionsService } from '../payments/promotions.service.js';
import { ActivePromotionDto, SelectableGroupDto, TopUpPriceDto } from './dto/console.dto.js';

/** Walks every page of an admin list (groups and promotions are a handful of rows). */
async function all<T>(page: (cursor?: string) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const p = await page(cursor);
    out.push(...p.data);
    cursor = p.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return out;
}

/**
 * What a customer needs to read that no /v1/me route answered yet: the groups it may put its
 * tokens in, the promotions running now, and a top-up's price before paying. Read through the
 * owning modules' services.
 */
@Injectable()
export class ConsoleReadsService {
  constructor(
    @Inject(GroupsService) private readonly groups: GroupsService,
    @Inject(PromotionsService) private readonly promotions: PromotionsService,
  ) {}

  async selectableGroups(): Promise<SelectableGroupDto[]> {
    const groups = await all<GroupDto>((c) => this.groups.list(500, c));
    return groups
      .filter((g) => g.selectable)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((g) => ({
        name: g.name,
        ratio: g.ratio,
        description: g.description,
        isDefault: g.isDefault,
      }));
  }

  /** Active, started and not ended, lowest rate first. */
  async activePromotions(now = new Date()): Promise<ActivePromotionDto[]> {
    const promotions = await all<PromotionDto>((c) => this.promotions.list(500, c));
    const t = now.getTime();
    return promotions
      .filter(
        (p) =>
          p.active &&
          (p.startsAt === null || Date.parse(p.startsAt) <= t) &&
          (p.endsAt === null || Date.parse(p.endsAt) > t),
      )
      .sort((a, b) => money(a.rate).comparedTo(money(b.rate)))
      .map((p) => ({
        id: p.id,
        name: p.name,
        rate: p.rate,
        minCredit: p.minCredit,
        endsAt: p.endsAt,
      }));
  }

  /** The price POST /v1/me/top-ups would ask now, by the same rule and rounding. */
  async topUpPrice(creditText: string): Promise<TopUpPriceDto> {
    const credit = money(creditText);
    const promotion = await this.promotions.bestForTopUp(credit);
    const price = topUpPrice(credit, promotion?.rate ?? null);
    return {
      credit: formatAmount(credit),
      price: formatAmount(price),
      currency: 'USD',
      promotion: promotion && {
        id: promotion.id,
        name: promotion.name,
        rate: formatRatio(promotion.rate),
        minCredit: formatAmount(promotion.minCredit),
        endsAt: promotion.endsAt?.toISOString() ?? null,
      },
    };
  }
}
