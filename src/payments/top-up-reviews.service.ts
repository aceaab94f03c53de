import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { conflict, notFound } from '../common/errors/domain-error.js';
import { formatAmount } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { ResolveTopUpDto, TopUpDto, TopUpStatus } from './dto/top-up.dto.js';
import { isCredited, TopUpBooksService } from './top-up-books.service.js';
import { toAdminTopUpDto } from './top-ups.mapper.js';
import { TopUpsRepository } from './top-ups.repository.js';

/** The admins' queue of top-ups across accounts, and their final decision on one in review. */
@Injectable()
export class TopUpReviewsService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(TopUpsRepository) private readonly topUps: TopUpsRepository,
    @Inject(TopUpBooksService) private readonly books: TopUpBooksService,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  async list(
    status: TopUpStatus | undefined,
    limit = DEFAULT_LIMIT,
    cursor?: string,
  ): Promise<Page<TopUpDto>> {
    const rows = await this.topUps.listAll(
      status ?? null,
      limit,
      decodeCursor(cursor, ['timestamp', 'uuid']),
    );
    return toPage(rows, limit, (t) => [t.cursorAt, t.id], toAdminTopUpDto);
  }

  /**
   * Resolves a needs_review top-up, once: `credit` books its credit (only if it was never
   * booked) and then lets refunds and disputes Stripe reported take their part; `dismiss`
   * closes it without credit. Either is final: the locked row and the conditional update make
   * a second or concurrent decision a 409. Recorded in the audit log in the same transaction.
   */
  async resolve(id: string, dto: ResolveTopUpDto, actor: string): Promise<TopUpDto> {
    const seen = await this.topUps.findById(id);
    if (!seen) throw notFound('top-up');
    return this.ds.transaction(async (em) => {
      // The PaymentIntent's lock before the row's, the order the webhook handlers take them in.
      if (seen.paymentIntentId !== null)
        await this.topUps.lockPaymentIntent(seen.paymentIntentId, em);
      const topUp = await this.topUps.lockById(id, em);
      if (!topUp) throw notFound('top-up');
      if (topUp.status !== 'needs_review' || topUp.resolution !== null) {
        throw conflict(
          topUp.resolution !== null
            ? `top-up ${id} was already resolved (${topUp.resolution.action}): a resolution is final`
            : `top-up ${id} is ${topUp.status}, not needs_review`,
        );
      }
      const credited = isCredited(topUp);
      if (dto.action === 'credit' && credited) {
        throw conflict(
          `top-up ${id}'s credit was already booked; dismiss closes its review without booking it again`,
        );
      }
      const resolved = await this.topUps.resolve(
        id,
        {
          action: dto.action,
          note: dto.note,
          status: dto.action === 'credit' || credited ? 'paid' : 'failed',
          credited: dto.action === 'credit',
        },
        em,
      );
      if (!resolved) throw conflict(`top-up ${id} was resolved meanwhile`);
      let final = resolved;
      if (dto.action === 'credit') {
        await this.books.bookCredit(
          resolved,
          `Top-up of ${formatAmount(resolved.credit)} USD credit (credited after review)`,
          em,
        );
        final = await this.books.applyOutstanding(resolved, em);
      }
      await this.audit.record(
        {
          actor,
          action: `top_up.${dto.action}`,
          target: `top_up:${id}`,
          before: toAdminTopUpDto(topUp),
          after: toAdminTopUpDto(final),
        },
        em,
      );
      return toAdminTopUpDto(final);
    });
  }
}
