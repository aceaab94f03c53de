import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';

export interface Group {
  name: string;
  ratio: Decimal;
  description: string;
  selectable: boolean;
  isDefault: boolean;
  createdAt: Date;
  updatedAt: Date;
  cursorAt: string;
}

interface GroupRow {
  name: string;
  ratio: string;
  description: string;
  selectable: boolean;
  is_default: boolean;
  created_at: Date;
  updated_at: Date;
  cursor_at: string;
}

const COLUMNS = `name, ratio, description, selectable, is_default, created_at, updated_at, created_at::text AS cursor_at`;

const toGroup = (r: GroupRow): Group => ({
  name: r.name,
  ratio: money(r.ratio),
  description: r.description,
  selectable: r.selectable,
  isDefault: r.is_default,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  cursorAt: r.cursor_at,
});

@Injectable()
export class GroupsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Inserts unless the name is taken; null means it was. */
  async insert(
    g: {
      name: string;
      ratio: string;
      description: string;
      selectable: boolean;
      isDefault: boolean;
    },
    em: EntityManager = this.ds.manager,
  ): Promise<Group | null> {
    const rows = await sqlRows<GroupRow>(
      em,
      `INSERT INTO groups (name, ratio, description, selectable, is_default) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO NOTHING RETURNING ${COLUMNS}`,
      [g.name, g.ratio, g.description, g.selectable, g.isDefault],
    );
    return rows[0] ? toGroup(rows[0]) : null;
  }

  async findByName(name: string, em: EntityManager = this.ds.manager): Promise<Group | null> {
    const rows = await sqlRows<GroupRow>(em, `SELECT ${COLUMNS} FROM groups WHERE name = $1`, [
      name,
    ]);
    return rows[0] ? toGroup(rows[0]) : null;
  }

  async findDefault(em: EntityManager = this.ds.manager): Promise<Group | null> {
    const rows = await sqlRows<GroupRow>(em, `SELECT ${COLUMNS} FROM groups WHERE is_default`);
    return rows[0] ? toGroup(rows[0]) : null;
  }

  async listPage(limit: number, after: CursorKey | null): Promise<Group[]> {
    const rows: GroupRow[] = after
      ? await this.ds.query(
          `SELECT ${COLUMNS} FROM groups WHERE (created_at, name) < ($1::timestamptz, $2)
           ORDER BY created_at DESC, name DESC LIMIT $3`,
          [after[0], after[1], limit + 1],
        )
      : await this.ds.query(
          `SELECT ${COLUMNS} FROM groups ORDER BY created_at DESC, name DESC LIMIT $1`,
          [limit + 1],
        );
    return rows.map(toGroup);
  }

  /** Clears the current default so another group can take it (same transaction). */
  async clearDefault(em: EntityManager): Promise<void> {
    await em.query(`UPDATE groups SET is_default = false, updated_at = now() WHERE is_default`);
  }

  async update(
    name: string,
    patch: { ratio?: string; description?: string; selectable?: boolean; isDefault?: boolean },
    em: EntityManager,
  ): Promise<Group | null> {
    const rows = await sqlRows<GroupRow>(
      em,
      `UPDATE groups SET
         ratio = COALESCE($2::numeric, ratio),
         description = COALESCE($3, description),
         selectable = COALESCE($4, selectable),
         is_default = COALESCE($5, is_default),
         updated_at = now()
       WHERE name = $1 RETURNING ${COLUMNS}`,
      [
        name,
        patch.ratio ?? null,
        patch.description ?? null,
        patch.selectable ?? null,
        patch.isDefault ?? null,
      ],
    );
    return rows[0] ? toGroup(rows[0]) : null;
  }

  /** Deletes a non-default group no token references; says why when it cannot. */
  async delete(
    name: string,
    em: EntityManager,
  ): Promise<'deleted' | 'not_found' | 'is_default' | 'in_use'> {
    const rows = await sqlRows<{ is_default: boolean }>(
      em,
      `SELECT is_default FROM groups WHERE name = $1 FOR UPDATE`,
      [name],
    );
    if (!rows[0]) return 'not_found';
    if (rows[0].is_default) return 'is_default';
    // The FOR UPDATE above blocks a token insert referencing this group (its FK check takes
    // a KEY SHARE lock) until we commit, so this check cannot go stale.
    const used = await sqlRows<unknown>(
      em,
      `SELECT 1 FROM api_tokens WHERE group_name = $1 LIMIT 1`,
      [name],
    );
    if (used.length > 0) return 'in_use';
    await em.query(`DELETE FROM groups WHERE name = $1`, [name]);
    return 'deleted';
  }
}
