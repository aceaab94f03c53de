import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError, ErrorDetail, notFound } from '../common/errors/domain-error.js';
import { money } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { AuditService } from '../audit/audit.service.js';
import { seedOnce } from '../database/seed.js';
import { CatalogPrice, CatalogRepository, NewPriceVersion } from './catalog.repository.js';
import { toPriceVersionDto } from './catalog.mapper.js';
import { MODEL_NAME, PriceVersionDto, PutPriceDto, TOKEN_FIELDS } from './dto/price.dto.js';

/** The provider's published prices (USD per 1M tokens; per-image reference prices for quotes). */
const SEED_CATALOG: NewPriceVersion[] = [
  {
    model: 'gpt-image-2',
    mode: 'tokens',
    inputText: '8',
    inputImage: '8',
    cachedInput: '2',
    outputText: '30',
    outputImage: '30',
    partialImageOutputTokens: 100,
    // At least the highest reference price (0.211): what a request naming no size holds per image.
    holdAmount: '0.25',
    reviewAbove: '5.00',
    referencePrices: [
      ...['1024x1024'].flatMap((size) => [
        { size, quality: 'low', price: '0.006' },
        { size, quality: 'medium', price: '0.053' },
        { size, quality: 'high', price: '0.211' },
      ]),
      ...['1024x1536', '1536x1024'].flatMap((size) => [
        { size, quality: 'low', price: '0.005' },
        { size, quality: 'medium', price: '0.041' },
        { size, quality: 'high', price: '0.165' },
      ]),
    ],
  },
  { model: 'gpt-image-2-all', mode: 'per_request', perRequest: '0.03', reviewAbove: '5.00' },
  { model: 'gpt-image-2-vip', mode: 'per_image', perImage: '0.03', reviewAbove: '5.00' },
];

@Injectable()
export class CatalogService implements OnModuleInit {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(CatalogRepository) private readonly repo: CatalogRepository,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  async onModuleInit(): Promise<void> {
    await seedOnce(this.ds, 'catalog.v1', async (em) => {
      for (const p of SEED_CATALOG) await this.repo.appendVersion(p, em);
    });
  }

  /** Priced models in name order, each with the price in force now. */
  async listCurrent(limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<PriceVersionDto>> {
    const after = decodeCursor(cursor, ['text']);
    const rows = await this.repo.listCurrent(limit, after ? after[0] : null);
    return toPage(rows, limit, (p) => [p.model], toPriceVersionDto);
  }

  /** The price in force now for each of `models` that has one. */
  currentPrices(models: string[]): Promise<Map<string, CatalogPrice>> {
    return this.repo.currentByModels(models);
  }

  /**
   * Price versions by id, for rebuilding stored events' breakdowns. A version is never
   * changed once written (a new price is a new version), so every instance may keep them.
   */
  async versionsById(ids: Iterable<string>): Promise<Map<string, CatalogPrice>> {
    const wanted = [...new Set(ids)];
    const missing = wanted.filter((id) => !this.versions.has(id));
    if (missing.length > 0) {
      for (const p of await this.repo.findByIds(missing)) this.versions.set(p.id, p);
    }
    const out = new Map<string, CatalogPrice>();
    for (const id of wanted) {
      const p = this.versions.get(id);
      if (!p) throw new Error(`price version ${id} is missing`);
      out.set(id, p);
    }
    return out;
  }

  private readonly versions = new Map<string, CatalogPrice>();

  findCurrent(model: string): Promise<CatalogPrice | null> {
    return this.repo.findCurrent(model);
  }

  pricedModels(models: string[]): Promise<Set<string>> {
    return this.repo.pricedModels(models);
  }

  /** Appends a new version (the current one stays as history) and answers it. */
  async putPrice(model: string, dto: PutPriceDto, actor: string): Promise<PriceVersionDto> {
    const details = this.checkPrice(model, dto);
    if (details.length > 0) {
      throw new DomainError(
        'validation_failed',
        `invalid fields: ${details.map((d) => d.field).join(', ')}`,
        details,
      );
    }
    const put = await this.ds.transaction(async (em) => {
      const before = await this.repo.findCurrent(model, em);
      const p = await this.repo.appendVersion({ ...dto, model }, em);
      await this.audit.record(
        {
          actor,
          action: 'price.put',
          target: `model:${model}`,
          before: before ? toPriceVersionDto(before) : null,
          after: toPriceVersionDto(p),
        },
        em,
      );
      return p;
    });
    return toPriceVersionDto(put);
  }

  async listVersions(
    model: string,
    limit = DEFAULT_LIMIT,
    cursor?: string,
  ): Promise<Page<PriceVersionDto>> {
    const after = decodeCursor(cursor, ['int']);
    const before = after ? Number.parseInt(after[0], 10) : null;
    if (before !== null && !Number.isSafeInteger(before)) throw notFound('cursor');
    const rows = await this.repo.listVersions(model, limit, before);
    if (rows.length === 0 && before === null && !(await this.repo.modelExists(model)))
      throw notFound(`model ${model}`);
    return toPage(rows, limit, (p) => [String(p.version)], toPriceVersionDto);
  }

  /** Rules across fields the DTO cannot express: a price that cannot be right, duplicates. */
  private checkPrice(model: string, dto: PutPriceDto): ErrorDetail[] {
    const details: ErrorDetail[] = [];
    if (!MODEL_NAME.test(model))
      details.push({ field: 'model', message: 'model must match ^[A-Za-z0-9._:-]{1,128}$' });
    if (
      dto.mode === 'tokens' &&
      TOKEN_FIELDS.every((f) => dto[f] !== undefined && money(dto[f]).isZero())
    ) {
      details.push({
        field: 'inputText',
        message: 'a tokens price cannot be zero for every kind of token',
      });
    }
    const seen = new Set<string>();
    for (const [i, r] of (dto.referencePrices ?? []).entries()) {
      const k = `${r.size}/${r.quality}`;
      if (seen.has(k))
        details.push({
          field: `referencePrices.${i}`,
          message: `duplicate reference price for ${k}`,
        });
      seen.add(k);
    }
    return details;
  }
}
