import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError, notFound } from '../common/errors/domain-error.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { AuditService } from '../audit/audit.service.js';
import { LedgerService } from '../ledger/ledger.service.js';
import { UsageReviewDto } from './dto/usage-review.dto.js';
import { toUsageReviewDto } from './usage-reviews.mapper.js';
import { UsageReviewsRepository } from './usage-reviews.repository.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { withBreakdowns } from './usage.breakdowns.js';
import type { StoredUsage, UsageRecord } from './usage.repository.js';

const alreadyDecided = (r: StoredUsage): DomainError =>
  new DomainError(
    'conflict',
    `request ${r.requestId} is not awaiting review (outcome ${r.outcome}); a decision is final`,
  );

/** Admins decide outsized charges: approve books the charge once, void never charges. */
@Injectable()
export class UsageReviewsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(UsageReviewsRepository) private readonly repo: UsageReviewsRepository,
    @Inject(LedgerService) private readonly ledger: LedgerService,
    @Inject(AuditService) private readonly audit: AuditService,
    @Inject(CatalogService) private readonly catalog: CatalogService,
  ) {}

  private async explain(r: StoredUsage): Promise<UsageRecord> {
    return (await withBreakdowns([r], this.catalog))[0];
  }

  /** 404 unless the event went to review (undecided, or decided already: then 409 later). */
  private async findReview(requestId: string): Promise<UsageRecord> {
    const found = await this.repo.find(requestId);
    if (!found || (found.outcome !== 'review' && found.reviewedAt === null))
      throw notFound(`usage review ${requestId}`);
    return this.explain(found);
  }

  async listPending(limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<UsageReviewDto>> {
    const rows = await this.repo.listPending(limit, decodeCursor(cursor, ['timestamp', 'int']));
    const explained = await withBreakdowns(rows, this.catalog);
    const page = rows.map((r, i) => ({ ...explained[i], cursorAt: r.cursorAt }));
    return toPage(page, limit, (r) => [r.cursorAt, r.id], toUsageReviewDto);
  }

  /**
   * Books the charge dated at approval, in one transaction with the outcome change: the
   * account is locked first (as ingestion does), then the event's row decides the race.
   */
  async approve(requestId: string, actor: string): Promise<UsageReviewDto> {
    const found = await this.findReview(requestId);
    const approved = await this.ds.transaction(async (em) => {
      const booking = await this.repo.lockAccount(found.accountId, em);
      const stored = await this.repo.approve(found, booking.bookedAt, em);
      if (!stored) return null;
      const ev = await this.explain(stored);
      await this.ledger.bookMany(
        [
          {
            accountId: ev.accountId,
            type: 'usage',
            amount: ev.charge.neg(),
            description: `${ev.model} request ${ev.requestId} (approved after review)`,
            reference: ev.requestId,
          },
        ],
        booking,
        em,
      );
      await this.audit.record(
        {
          actor,
          action: 'usage_review.approve',
          target: `usage:${requestId}`,
          before: toUsageReviewDto(found),
          after: toUsageReviewDto(ev),
        },
        em,
      );
      return ev;
    });
    if (!approved) throw alreadyDecided((await this.repo.find(requestId)) ?? found);
    return toUsageReviewDto(approved);
  }

  async void(requestId: string, actor: string): Promise<UsageReviewDto> {
    const found = await this.findReview(requestId);
    const voided = await this.ds.transaction(async (em) => {
      const stored = await this.repo.void(found, em);
      const ev = stored ? await this.explain(stored) : null;
      if (ev) {
        await this.audit.record(
          {
            actor,
            action: 'usage_review.void',
            target: `usage:${requestId}`,
            before: toUsageReviewDto(found),
            after: toUsageReviewDto(ev),
          },
          em,
        );
      }
      return ev;
    });
    if (!voided) throw alreadyDecided((await this.repo.find(requestId)) ?? found);
    return toUsageReviewDto(voided);
  }
}
