import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import type { Principal } from '../auth/principal.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { DomainError, ErrorDetail } from '../common/errors/domain-error.js';
import { validationError } from '../common/http/validation.js';
import { formatExact, formatRatio } from '../common/money/money.js';
import { GroupsService } from '../groups/groups.service.js';
import { QuoteDto, QuoteQueryDto } from './dto/quote.dto.js';
import { toPromotionRef } from './promotions.mapper.js';
import { PromotionsService } from './promotions.service.js';

type Group = Awaited<ReturnType<GroupsService['get']>>;

/**
 * Prices n images (or requests) before they are made. Every figure is exact: nothing is
 * rounded, and each is written with every digit it has and no padding (formatExact:
 * "0.17935", "150", "127.5").
 */
@Injectable()
export class QuoteService {
  constructor(
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(GroupsService) private readonly groups: GroupsService,
    @Inject(PromotionsService) private readonly promotions: PromotionsService,
  ) {}

  async quote(q: QuoteQueryDto, principal: Principal): Promise<QuoteDto> {
    const n = q.n ?? 1;
    const details: ErrorDetail[] = [];
    const [price, group, promotion] = await Promise.all([
      this.catalog.findCurrent(q.model),
      this.findGroup(q.group, principal),
      this.promotions.bestForQuote(),
    ]);
    if (!price) details.push({ field: 'model', message: `model ${q.model} has no price` });
    if (!group)
      details.push({ field: 'group', message: `group ${q.group ?? ''} is not available` });

    let unitPrice: Decimal | null = null;
    if (price) {
      switch (price.mode) {
        case 'tokens': {
          if (q.size === undefined)
            details.push({ field: 'size', message: 'size is required for a tokens-mode model' });
          if (q.quality === undefined) {
            details.push({
              field: 'quality',
              message: 'quality is required for a tokens-mode model',
            });
          }
          if (q.size !== undefined && q.quality !== undefined) {
            const ref = price.referencePrices.find(
              (r) => r.size === q.size && r.quality === q.quality,
            );
            if (ref) unitPrice = ref.price;
            else {
              const message = `${q.model} has no reference price for ${q.size} ${q.quality}`;
              details.push({ field: 'size', message }, { field: 'quality', message });
            }
          }
          break;
        }
        case 'per_request':
          unitPrice = price.perRequest;
          break;
        case 'per_image':
          unitPrice = price.perImage;
          break;
      }
    }
    if (details.length > 0 || !price || !group || unitPrice === null)
      throw validationError(details);

    const listPrice = unitPrice.times(n);
    const charged = listPrice.times(group.ratio);
    return {
      model: price.model,
      mode: price.mode,
      priceVersion: price.version,
      size: q.size ?? null,
      quality: q.quality ?? null,
      n,
      unitPrice: formatExact(unitPrice),
      listPrice: formatExact(listPrice),
      group: group.name,
      ratio: formatRatio(group.ratio),
      price: formatExact(charged),
      promotion: promotion && toPromotionRef(promotion),
      cashPrice: formatExact(promotion ? charged.times(promotion.rate) : charged),
    };
  }

  /** The named group (the default when omitted); customers see only groups they may select. */
  private async findGroup(name: string | undefined, principal: Principal): Promise<Group | null> {
    const group = await (
      name === undefined ? this.groups.getDefault() : this.groups.get(name)
    ).catch((err: unknown) => {
      // Only "no such group" means unavailable; anything else (the database) is a real error.
      if (err instanceof DomainError && err.code === 'not_found') return null;
      throw err;
    });
    if (group && principal.role === 'customer' && !group.selectable && !group.isDefault)
      return null;
    return group;
  }
}
