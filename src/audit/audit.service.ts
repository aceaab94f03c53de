import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { AuditEntryDto } from './audit.dto.js';
import { toAuditEntryDto } from './audit.mapper.js';
import { AuditEntry, AuditRepository } from './audit.repository.js';

/**
 * The audit log of admin changes. `record` takes the change's own transaction, so an entry
 * exists exactly when its change committed; `change` runs a change and its entry in one.
 */
@Injectable()
export class AuditService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(AuditRepository) private readonly repo: AuditRepository,
  ) {}

  record(entry: AuditEntry, em: EntityManager): Promise<void> {
    return this.repo.append(entry, em);
  }

  /**
   * Runs `fn` in a transaction and records what it returns as one audit entry in the same
   * transaction; `fn` answers the entry's before/after and its own result.
   */
  change<T>(
    actor: string,
    action: string,
    fn: (
      em: EntityManager,
    ) => Promise<{ result: T; target: string; before?: unknown; after?: unknown }>,
  ): Promise<T> {
    return this.ds.transaction(async (em) => {
      const { result, target, before, after } = await fn(em);
      await this.repo.append(
        { actor, action, target, before: before ?? null, after: after ?? null },
        em,
      );
      return result;
    });
  }

  async list(q: {
    actor?: string;
    target?: string;
    limit?: number;
    cursor?: string;
  }): Promise<Page<AuditEntryDto>> {
    const limit = q.limit ?? DEFAULT_LIMIT;
    const after = decodeCursor(q.cursor, ['int']);
    const rows = await this.repo.list(
      { actor: q.actor ?? null, target: q.target ?? null },
      limit,
      after ? after[0] : null,
    );
    return toPage(rows, limit, (r) => [r.id], toAuditEntryDto);
  }
}
