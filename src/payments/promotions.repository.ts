import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import { isUuid } from '../common/ids.js';

export interface Promotion {
  id: string;
  name: string;
  rate: Decimal;
  startsAt: Date | null;
  endsAt: Date | null;
  minCredit: Decimal;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
  cursorAt: string;
}

interface PromotionRow {
  id: string;
  name: string;
  rate: string;
  starts_at: Date | null;
  ends_at: Date | null;
  min_credit: string;
  active: boolean;
  created_at: Date;
  updated_at: Date;
  cursor_at: string;
}

export interface NewPromotion {
  name: string;
  rate: string;
  startsAt: string | null;
  endsAt: string | null;
  minCredit: string;
  active: boolean;
}

/** undefined: unchanged; null (times only): cleared. */
export type PromotionPatch = Partial<NewPromotion>;

const COLUMNS = `id, name, rate, starts_at, ends_at, min_credit, active, created_at, updated_at, created_at::text AS cursor_at`;

const toPromotion = (r: PromotionRow): Promotion => ({
  id: r.id,
  name: r.name,
  rate: money(r.rate),
  startsAt: r.starts_at,
  endsAt: r.ends_at,
  minCredit: money(r.min_credit),
  active: r.active,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  cursorAt: r.cursor_at,
});

/** SQL of the `promotions` table. */
@Injectable()
export class PromotionsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insert(p: NewPromotion, em: EntityManager = this.ds.manager): Promise<Promotion> {
    const rows = await sqlRows<PromotionRow>(
      em,
      `INSERT INTO promotions (name, rate, starts_at, ends_at, min_credit, active)
       VALUES ($1, $2::numeric, $3::timestamptz, $4::timestamptz, $5::numeric, $6)
       RETURNING ${COLUMNS}`,
      [p.name, p.rate, p.startsAt, p.endsAt, p.minCredit, p.active],
    );
    return toPromotion(rows[0]);
  }

  async findById(id: string, em: EntityManager = this.ds.manager): Promise<Promotion | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<PromotionRow>(
      em,
      `SELECT ${COLUMNS} FROM promotions WHERE id = $1`,
      [id],
    );
    return rows[0] ? toPromotion(rows[0]) : null;
  }

  /** Inside a transaction: the row stays as read until commit, so a merged patch cannot go stale. */
  async lockById(id: string, em: EntityManager): Promise<Promotion | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<PromotionRow>(
      em,
      `SELECT ${COLUMNS} FROM promotions WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0] ? toPromotion(rows[0]) : null;
  }

  async listPage(limit: number, after: CursorKey | null): Promise<Promotion[]> {
    const rows = after
      ? await sqlRows<PromotionRow>(
          this.ds.manager,
          `SELECT ${COLUMNS} FROM promotions WHERE (created_at, id) < ($1::timestamptz, $2::uuid)
           ORDER BY created_at DESC, id DESC LIMIT $3`,
          [after[0], after[1], limit + 1],
        )
      : await sqlRows<PromotionRow>(
          this.ds.manager,
          `SELECT ${COLUMNS} FROM promotions ORDER BY created_at DESC, id DESC LIMIT $1`,
          [limit + 1],
        );
    return rows.map(toPromotion);
  }

  /** Applies a checked patch: omitted fields stay as stored (timestamps keep their microseconds). */
  async update(id: string, patch: PromotionPatch, em: EntityManager): Promise<Promotion | null> {
    const rows = await sqlRows<PromotionRow>(
      em,
      `UPDATE promotions SET
         name = COALESCE($2, name),
         rate = COALESCE($3::numeric, rate),
         starts_at = CASE WHEN $4 THEN $5::timestamptz ELSE starts_at END,
         ends_at = CASE WHEN $6 THEN $7::timestamptz ELSE ends_at END,
         min_credit = COALESCE($8::numeric, min_credit),
         active = COALESCE($9, active),
         updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        patch.name ?? null,
        patch.rate ?? null,
        patch.startsAt !== undefined,
        patch.startsAt ?? null,
        patch.endsAt !== undefined,
        patch.endsAt ?? null,
        patch.minCredit ?? null,
        patch.active ?? null,
      ],
    );
    return rows[0] ? toPromotion(rows[0]) : null;
  }

  /** Hard delete: top-ups keep their own snapshot and their promotion_id is set to null. */
  async delete(id: string, em: EntityManager = this.ds.manager): Promise<boolean> {
    if (!isUuid(id)) return false;
    const rows = await sqlRows<{ id: string }>(
      em,
      `DELETE FROM promotions WHERE id = $1 RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  /**
   * The promotion with the lowest rate among those active now (the database's clock, the same
   * for every instance); with `credit`, only those whose minCredit it reaches. Ties go to the
   * oldest, so the choice is stable.
   */
  async bestApplicable(
    credit: Decimal | null,
    em: EntityManager = this.ds.manager,
  ): Promise<Promotion | null> {
    const rows = await sqlRows<PromotionRow>(
      em,
      `SELECT ${COLUMNS} FROM promotions
       WHERE active
         AND (starts_at IS NULL OR starts_at <= now())
         AND (ends_at IS NULL OR ends_at > now())
         AND ($1::numeric IS NULL OR min_credit <= $1::numeric)
       ORDER BY rate ASC, created_at ASC, id ASC
       LIMIT 1`,
      [credit === null ? null : credit.toFixed()],
    );
    return rows[0] ? toPromotion(rows[0]) : null;
  }
}
