import { Inject, Injectable } from '@nestjs/common';
import { money } from '../common/money/money.js';
import type { Page } from '../common/pagination/pagination.js';
import type { GroupDto } from '../groups/dto/group.dto.js';
import { GroupsService } from '../groups/groups.service.js';
import type { PromotionDto } from '../payments/dto/promotion.dto.js';
import { topUpPrice } from '../payments/payments.math.js';
import { toPromotionDto } from '../payments/promotions.mapper.js';
import { PromotionsService } from '../payments/promotions.service.js';
import { toActivePromotionDto, toSelectableGroupDto, toTopUpPriceDto } from './console.mapper.js';
import {
  ActivePromotionListDto,
  SelectableGroupListDto,
  TopUpPriceDto,
} from './dto/console.dto.js';

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

  async selectableGroups(): Promise<SelectableGroupListDto> {
    const groups = await all<GroupDto>((c) => this.groups.list(500, c));
    const data = groups
      .filter((g) => g.selectable)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map(toSelectableGroupDto);
    return { data, nextCursor: null };
  }

  /** Active, started and not ended, lowest rate first. */
  async activePromotions(now = new Date()): Promise<ActivePromotionListDto> {
    const promotions = await all<PromotionDto>((c) => this.promotions.list(500, c));
    const t = now.getTime();
    const data = promotions
      .filter(
        (p) =>
          p.active &&
          (p.startsAt === null || Date.parse(p.startsAt) <= t) &&
          (p.endsAt === null || Date.parse(p.endsAt) > t),
      )
      .sort((a, b) => money(a.rate).comparedTo(money(b.rate)))
      .map(toActivePromotionDto);
    return { data, nextCursor: null };
  }

  /** The price POST /v1/me/top-ups would ask now, by the same rule and rounding. */
  async topUpPrice(creditText: string): Promise<TopUpPriceDto> {
    const credit = money(creditText);
    const promotion = await this.promotions.bestForTopUp(credit);
    const price = topUpPrice(credit, promotion?.rate ?? null);
    return toTopUpPriceDto(credit, price, promotion && toPromotionDto(promotion));
  }
}
