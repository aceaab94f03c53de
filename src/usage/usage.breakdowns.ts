import type { CatalogService } from '../catalog/catalog.service.js';
import { breakdownOf } from '../pricing/pricing.js';
import type { StoredUsage, UsageRecord } from './usage.repository.js';

/**
 * Stored events with their breakdowns, rebuilt from their (immutable) price versions. Reads
 * the catalog, so it sits on the service side, not among the pure mappers.
 */
export async function withBreakdowns(
  rows: StoredUsage[],
  catalog: CatalogService,
): Promise<UsageRecord[]> {
  if (rows.length === 0) return [];
  const prices = await catalog.versionsById(rows.map((r) => r.priceVersionId));
  return rows.map((r) => ({
    ...r,
    breakdown: breakdownOf(
      prices.get(r.priceVersionId) as NonNullable<ReturnType<typeof prices.get>>,
      r.outcome,
      r.quantities,
    ),
  }));
}
