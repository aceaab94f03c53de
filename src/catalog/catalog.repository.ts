import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import type { BillingMode, PriceVersion } from '../pricing/pricing.js';
import { sqlRows } from '../database/sql.js';

export interface ReferencePrice {
  size: string;
  quality: string;
  price: Decimal;
}

/** A price version as the catalog stores it: what pricing needs, plus quotes, review and holds. */
export interface CatalogPrice extends PriceVersion {
  referencePrices: ReferencePrice[];
  /** A charge above this is held for review instead of booked; null: never. */
  reviewAbove: Decimal | null;
  /** tokens mode: USD per image held when a request names no priced size and quality. */
  holdAmount: Decimal | null;
  effectiveFrom: Date;
  createdAt: Date;
}

export interface NewPriceVersion {
  model: string;
  mode: BillingMode;
  inputText?: string;
  inputImage?: string;
  cachedInput?: string;
  outputText?: string;
  outputImage?: string;
  partialImageOutputTokens?: number;
  perRequest?: string;
  perImage?: string;
  referencePrices?: { size: string; quality: string; price: string }[];
  /** Omitted: the previous version's; null: no review. */
  reviewAbove?: string | null;
  /** tokens mode. Omitted: the previous version's, else the highest reference price, else 0.25. */
  holdAmount?: string;
  effectiveFrom?: string;
}

interface PriceRow {
  id: string;
  model: string;
  version: number;
  mode: BillingMode;
  input_text: string | null;
  input_image: string | null;
  cached_input: string | null;
  output_text: string | null;
  output_image: string | null;
  partial_image_output_tokens: number | null;
  per_request: string | null;
  per_image: string | null;
  reference_prices: { size: string; quality: string; price: string }[] | null;
  review_above: string | null;
  hold_amount: string | null;
  effective_from: Date;
  created_at: Date;
}

const dec = (v: string | null): Decimal | null => (v === null ? null : money(v));

export const toCatalogPrice = (r: PriceRow): CatalogPrice => ({
  id: r.id,
  model: r.model,
  version: r.version,
  mode: r.mode,
  inputText: dec(r.input_text),
  inputImage: dec(r.input_image),
  cachedInput: dec(r.cached_input),
  outputText: dec(r.output_text),
  outputImage: dec(r.output_image),
  partialImageOutputTokens: r.partial_image_output_tokens,
  perRequest: dec(r.per_request),
  perImage: dec(r.per_image),
  referencePrices: (r.reference_prices ?? []).map((p) => ({ ...p, price: money(p.price) })),
  reviewAbove: dec(r.review_above),
  holdAmount: dec(r.hold_amount),
  effectiveFrom: r.effective_from,
  createdAt: r.created_at,
});

export const PRICE_COLUMNS = `id, model, version, mode, input_text, input_image, cached_input, output_text, output_image,
  partial_image_output_tokens, per_request, per_image, reference_prices, review_above, hold_amount, effective_from, created_at`;

@Injectable()
export class CatalogRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Appends the next version of a model's price. The model row's lock serialises concurrent
   * PUTs so version numbers are dense; the (model, version) unique key backs that up.
   */
  async appendVersion(p: NewPriceVersion, em: EntityManager): Promise<CatalogPrice> {
    await em.query(`INSERT INTO models (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [
      p.model,
    ]);
    await em.query(`SELECT name FROM models WHERE name = $1 FOR UPDATE`, [p.model]);
    // reviewAbove and holdAmount carry over from the latest version when a PUT omits them:
    // an admin changing a price does not silently lose the model's review threshold or hold.
    const rows = await sqlRows<PriceRow>(
      em,
      `WITH prev AS (
         SELECT review_above, hold_amount FROM price_versions WHERE model = $1::varchar
         ORDER BY version DESC LIMIT 1
       )
       INSERT INTO price_versions (model, version, mode, input_text, input_image, cached_input, output_text,
         output_image, partial_image_output_tokens, per_request, per_image, reference_prices, review_above,
         hold_amount, effective_from)
       SELECT $1::varchar, COALESCE(MAX(version), 0) + 1, $2::varchar, $3::numeric, $4::numeric, $5::numeric,
              $6::numeric, $7::numeric, $8::integer, $9::numeric, $10::numeric, $11::jsonb,
              CASE WHEN $13::boolean THEN $14::numeric ELSE (SELECT review_above FROM prev) END,
              CASE WHEN $2::varchar <> 'tokens' THEN NULL
                   ELSE COALESCE($15::numeric, (SELECT hold_amount FROM prev),
                     (SELECT max((r ->> 'price')::numeric) FROM jsonb_array_elements($11::jsonb) r), 0.25) END,
              COALESCE($12::timestamptz, now())
       FROM price_versions WHERE model = $1::varchar
       RETURNING ${PRICE_COLUMNS}`,
      [
        p.model,
        p.mode,
        p.inputText ?? null,
        p.inputImage ?? null,
        p.cachedInput ?? null,
        p.outputText ?? null,
        p.outputImage ?? null,
        p.partialImageOutputTokens ?? null,
        p.perRequest ?? null,
        p.perImage ?? null,
        JSON.stringify(p.referencePrices ?? []),
        p.effectiveFrom ?? null,
        p.reviewAbove !== undefined,
        p.reviewAbove ?? null,
        p.holdAmount ?? null,
      ],
    );
    return toCatalogPrice(rows[0]);
  }

  /** The version in force now for each model: the latest effective_from not in the future. */
  /** A page of models in name order (after `afterModel`), each with its version in force. */
  async listCurrent(limit: number, afterModel: string | null): Promise<CatalogPrice[]> {
    const rows = await sqlRows<PriceRow>(
      this.ds,
      `SELECT DISTINCT ON (model) ${PRICE_COLUMNS} FROM price_versions
       WHERE effective_from <= now() AND ($1::text IS NULL OR model > $1::text)
       ORDER BY model, effective_from DESC, version DESC LIMIT $2`,
      [afterModel, limit + 1],
    );
    return rows.map(toCatalogPrice);
  }

  async currentByModels(models: string[]): Promise<Map<string, CatalogPrice>> {
    const rows = await sqlRows<PriceRow>(
      this.ds,
      `SELECT DISTINCT ON (model) ${PRICE_COLUMNS} FROM price_versions
       WHERE model = ANY($1::text[]) AND effective_from <= now() ORDER BY model, effective_from DESC, version DESC`,
      [models],
    );
    return new Map(rows.map((r) => [r.model, toCatalogPrice(r)]));
  }

  /** Price versions by id (they never change once written). */
  async findByIds(ids: string[]): Promise<CatalogPrice[]> {
    const rows = await sqlRows<PriceRow>(
      this.ds,
      `SELECT ${PRICE_COLUMNS} FROM price_versions WHERE id = ANY($1::bigint[])`,
      [ids],
    );
    return rows.map(toCatalogPrice);
  }

  async findCurrent(
    model: string,
    em: EntityManager = this.ds.manager,
  ): Promise<CatalogPrice | null> {
    const rows = await sqlRows<PriceRow>(
      em,
      `SELECT ${PRICE_COLUMNS} FROM price_versions WHERE model = $1 AND effective_from <= now()
       ORDER BY effective_from DESC, version DESC LIMIT 1`,
      [model],
    );
    return rows[0] ? toCatalogPrice(rows[0]) : null;
  }

  async listVersions(
    model: string,
    limit: number,
    beforeVersion: number | null,
  ): Promise<CatalogPrice[]> {
    const rows = await sqlRows<PriceRow>(
      this.ds,
      `SELECT ${PRICE_COLUMNS} FROM price_versions WHERE model = $1 AND ($2::int IS NULL OR version < $2)
       ORDER BY version DESC LIMIT $3`,
      [model, beforeVersion, limit + 1],
    );
    return rows.map(toCatalogPrice);
  }

  async modelExists(model: string): Promise<boolean> {
    const rows = await sqlRows<unknown>(this.ds, `SELECT 1 FROM models WHERE name = $1`, [model]);
    return rows.length > 0;
  }

  /** Names of the models among `models` that have a price in force now. */
  async pricedModels(models: string[]): Promise<Set<string>> {
    const rows = await sqlRows<{ model: string }>(
      this.ds,
      `SELECT DISTINCT model FROM price_versions WHERE model = ANY($1::text[]) AND effective_from <= now()`,
      [models],
    );
    return new Set(rows.map((r) => r.model));
  }
}
