import { formatExact, ZERO } from '../common/money/money.js';
import type { CatalogPrice } from './catalog.repository.js';
import { PriceVersionDto, TOKEN_FIELDS } from './dto/price.dto.js';

export function toPriceVersionDto(p: CatalogPrice): PriceVersionDto {
  const dto: PriceVersionDto = {
    model: p.model,
    version: p.version,
    mode: p.mode,
    referencePrices: p.referencePrices.map((r) => ({
      size: r.size,
      quality: r.quality,
      price: formatExact(r.price),
    })),
    reviewAbove: p.reviewAbove === null ? null : formatExact(p.reviewAbove),
    effectiveFrom: p.effectiveFrom.toISOString(),
    createdAt: p.createdAt.toISOString(),
  };
  switch (p.mode) {
    case 'tokens':
      for (const f of TOKEN_FIELDS) dto[f] = formatExact(p[f] ?? ZERO);
      dto.partialImageOutputTokens = p.partialImageOutputTokens ?? 0;
      dto.holdAmount = formatExact(p.holdAmount ?? ZERO);
      break;
    case 'per_request':
      dto.perRequest = formatExact(p.perRequest ?? ZERO);
      break;
    case 'per_image':
      dto.perImage = formatExact(p.perImage ?? ZERO);
      break;
  }
  return dto;
}
