import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  at: Date;
}

interface AuditRow {
  id: string;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
  at: Date;
}

/** Owns audit_log; append-only (a trigger refuses UPDATE and DELETE). */
@Injectable()
export class AuditRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async append(e: AuditEntry, em: EntityManager): Promise<void> {
    await sqlRows(
      em,
      `INSERT INTO audit_log (actor, action, target, before, after) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)`,
      [
        e.actor,
        e.action,
        e.target,
        e.before === undefined ? null : JSON.stringify(e.before),
        e.after === undefined ? null : JSON.stringify(e.after),
      ],
    );
  }

  /** Newest first, after the cursor's id. */
  async list(
    filter: { actor: string | null; target: string | null },
    limit: number,
    beforeId: string | null,
  ): Promise<AuditRecord[]> {
    const rows = await sqlRows<AuditRow>(
      this.ds,
      `SELECT id, actor, action, target, before, after, at FROM audit_log
       WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR target = $2)
         AND ($3::bigint IS NULL OR id < $3::bigint)
       ORDER BY id DESC LIMIT $4`,
      [filter.actor, filter.target, beforeId, limit + 1],
    );
    return rows;
  }
}
