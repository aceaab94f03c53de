import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { invalid, notFound } from '../common/errors/domain-error.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { AuditService } from '../audit/audit.service.js';
import { seedOnce } from '../database/seed.js';
import { CreatePromotionDto, PromotionDto, UpdatePromotionDto } from './dto/promotion.dto.js';
import { toPromotionDto } from './promotions.mapper.js';
import { Promotion, PromotionsRepository } from './promotions.repository.js';

@Injectable()
export class PromotionsService implements OnModuleInit {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(PromotionsRepository) private readonly repo: PromotionsRepository,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  async onModuleInit(): Promise<void> {
    await seedOnce(this.ds, 'promotions.v1', async (em) => {
      await this.repo.insert(
        {
          name: '15% off top-ups',
          rate: '0.85',
          startsAt: null,
          endsAt: null,
          minCredit: '0',
          active: true,
        },
        em,
      );
    });
  }

  async list(limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<PromotionDto>> {
    const rows = await this.repo.listPage(limit, decodeCursor(cursor, ['timestamp', 'uuid']));
    return toPage(rows, limit, (p) => [p.cursorAt, p.id], toPromotionDto);
  }

  async get(id: string): Promise<PromotionDto> {
    const p = await this.repo.findById(id);
    if (!p) throw notFound('promotion');
    return toPromotionDto(p);
  }

  create(dto: CreatePromotionDto, actor: string): Promise<PromotionDto> {
    return this.audit.change(actor, 'promotion.create', async (em) => {
      const p = await this.repo.insert(
        {
          name: dto.name,
          rate: dto.rate,
          startsAt: dto.startsAt ?? null,
          endsAt: dto.endsAt ?? null,
          minCredit: dto.minCredit ?? '0',
          active: dto.active ?? true,
        },
        em,
      );
      const after = toPromotionDto(p);
      return { result: after, target: `promotion:${p.id}`, after };
    });
  }

  /** Checks the window the patch leaves (stored values where not patched) on the locked row. */
  update(id: string, dto: UpdatePromotionDto, actor: string): Promise<PromotionDto> {
    return this.audit.change(actor, 'promotion.update', async (em) => {
      const current = await this.repo.lockById(id, em);
      if (!current) throw notFound('promotion');
      const time = (patched: string | null | undefined, stored: Date | null): number | null =>
        patched === undefined
          ? (stored?.getTime() ?? null)
          : patched === null
            ? null
            : Date.parse(patched);
      const startsAt = time(dto.startsAt, current.startsAt);
      const endsAt = time(dto.endsAt, current.endsAt);
      if (startsAt !== null && endsAt !== null && endsAt <= startsAt) {
        throw invalid('endsAt', 'endsAt must be later than startsAt');
      }
      const updated = await this.repo.update(id, dto, em);
      if (!updated) throw notFound('promotion');
      const after = toPromotionDto(updated);
      return { result: after, target: `promotion:${id}`, before: toPromotionDto(current), after };
    });
  }

  delete(id: string, actor: string): Promise<void> {
    return this.audit.change(actor, 'promotion.delete', async (em) => {
      const before = await this.repo.lockById(id, em);
      if (!before || !(await this.repo.delete(id, em))) throw notFound('promotion');
      return { result: undefined, target: `promotion:${id}`, before: toPromotionDto(before) };
    });
  }

  /** The lowest-rate promotion a top-up of `credit` gets now, if any. */
  bestForTopUp(credit: Decimal, em?: EntityManager): Promise<Promotion | null> {
    return this.repo.bestApplicable(credit, em);
  }

  /** The lowest-rate promotion active now, whatever its minCredit: the best cash price of usage. */
  bestForQuote(): Promise<Promotion | null> {
    return this.repo.bestApplicable(null);
  }
}
