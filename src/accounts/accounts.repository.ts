import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import { isUuid } from '../common/ids.js';

export type AccountStatus = 'active' | 'suspended';

export interface Account {
  id: string;
  name: string;
  email: string | null;
  status: AccountStatus;
  balance: Decimal;
  /** Money set aside by holds that still count (expired ones excluded even before a sweep). */
  held: Decimal;
  creditLimit: Decimal;
  consoleKeyPrefix: string;
  createdAt: Date;
  updatedAt: Date;
  cursorAt: string;
}

interface AccountRow {
  id: string;
  name: string;
  email: string | null;
  status: AccountStatus;
  balance: string;
  held: string;
  credit_limit: string;
  console_key_prefix: string;
  created_at: Date;
  updated_at: Date;
  cursor_at: string;
}

// Expired holds stop counting at their expiry, whether or not a sweep has closed them yet
// (read in expiry order: through holds_active_account_expiry, see tokens' expiredHeld).
const COLUMNS = `id, name, email, status, balance,
  held - COALESCE((SELECT sum(e.amount) FROM (SELECT h.amount FROM holds h
                   WHERE h.account_id = accounts.id AND h.status = 'active' AND h.expires_at <= now()
                   ORDER BY h.expires_at) e), 0) AS held,
  credit_limit, console_key_prefix, created_at, updated_at, created_at::text AS cursor_at`;

const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  name: r.name,
  email: r.email,
  status: r.status,
  balance: money(r.balance),
  held: money(r.held),
  creditLimit: money(r.credit_limit),
  consoleKeyPrefix: r.console_key_prefix,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  cursorAt: r.cursor_at,
});

@Injectable()
export class AccountsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insert(
    a: {
      name: string;
      email: string | null;
      keyHash: string;
      keyPrefix: string;
    },
    em: EntityManager = this.ds.manager,
  ): Promise<Account> {
    const rows = await sqlRows<AccountRow>(
      em,
      `INSERT INTO accounts (name, email, console_key_hash, console_key_prefix) VALUES ($1, $2, $3, $4)
       RETURNING ${COLUMNS}`,
      [a.name, a.email, a.keyHash, a.keyPrefix],
    );
    return toAccount(rows[0]);
  }

  async findById(id: string, em: EntityManager = this.ds.manager): Promise<Account | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<AccountRow>(em, `SELECT ${COLUMNS} FROM accounts WHERE id = $1`, [
      id,
    ]);
    return rows[0] ? toAccount(rows[0]) : null;
  }

  async findIdByConsoleKeyHash(hash: string): Promise<string | null> {
    const rows = await sqlRows<{ id: string }>(
      this.ds,
      `SELECT id FROM accounts WHERE console_key_hash = $1`,
      [hash],
    );
    return rows[0]?.id ?? null;
  }

  async listPage(limit: number, after: CursorKey | null): Promise<Account[]> {
    const rows: AccountRow[] = after
      ? await this.ds.query(
          `SELECT ${COLUMNS} FROM accounts WHERE (created_at, id) < ($1::timestamptz, $2::uuid)
           ORDER BY created_at DESC, id DESC LIMIT $3`,
          [after[0], after[1], limit + 1],
        )
      : await this.ds.query(
          `SELECT ${COLUMNS} FROM accounts ORDER BY created_at DESC, id DESC LIMIT $1`,
          [limit + 1],
        );
    return rows.map(toAccount);
  }

  async update(
    id: string,
    patch: { name?: string; status?: AccountStatus; creditLimit?: string },
    em: EntityManager = this.ds.manager,
  ): Promise<Account | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<AccountRow>(
      em,
      `UPDATE accounts SET name = COALESCE($2, name), status = COALESCE($3, status),
         credit_limit = COALESCE($4::numeric, credit_limit), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, patch.name ?? null, patch.status ?? null, patch.creditLimit ?? null],
    );
    return rows[0] ? toAccount(rows[0]) : null;
  }

  /** Replaces the console key: the old one stops working with this statement's commit. */
  async replaceConsoleKey(
    id: string,
    keyHash: string,
    keyPrefix: string,
    em: EntityManager = this.ds.manager,
  ): Promise<Account | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<AccountRow>(
      em,
      `UPDATE accounts SET console_key_hash = $2, console_key_prefix = $3, updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, keyHash, keyPrefix],
    );
    return rows[0] ? toAccount(rows[0]) : null;
  }
}
