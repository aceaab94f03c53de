import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import { isUuid } from '../common/ids.js';

export interface RedemptionBatch {
  id: string;
  name: string;
  credit: Decimal;
  count: number;
  redeemed: number;
  disabled: number;
  expiresAt: Date | null;
  disabledAt: Date | null;
  createdAt: Date;
  cursorAt: string;
}

interface BatchRow {
  id: string;
  name: string;
  credit: string;
  count: number;
  redeemed: string;
  disabled: string;
  expires_at: Date | null;
  disabled_at: Date | null;
  created_at: Date;
  cursor_at: string;
}

const toBatch = (r: BatchRow): RedemptionBatch => ({
  id: r.id,
  name: r.name,
  credit: money(r.credit),
  count: r.count,
  redeemed: Number.parseInt(r.redeemed, 10),
  disabled: Number.parseInt(r.disabled, 10),
  expiresAt: r.expires_at,
  disabledAt: r.disabled_at,
  createdAt: r.created_at,
  cursorAt: r.cursor_at,
});

/** A batch with its codes' counts (index redemption_codes_batch). */
const BATCH = `
  SELECT b.id, b.name, b.credit, b.count, b.expires_at, b.disabled_at, b.created_at,
         b.created_at::text AS cursor_at,
         (SELECT count(*) FROM redemption_codes c WHERE c.batch_id = b.id AND c.redeemed_at IS NOT NULL) AS redeemed,
         (SELECT count(*) FROM redemption_codes c WHERE c.batch_id = b.id AND c.disabled_at IS NOT NULL) AS disabled
  FROM redemption_batches b`;

/** Failed attempts an account may make in a minute before it is refused. */
export const MAX_FAILED_ATTEMPTS = 10;

/** A code claimed for an account: what to book. */
export interface ClaimedCode {
  codeId: string;
  batchId: string;
  batchName: string;
  credit: Decimal;
}

/** SQL of the redemption tables: batches, hashed codes, failed attempts. */
@Injectable()
export class RedemptionsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insertBatch(
    b: { name: string; credit: Decimal; expiresAt: string | null; codeHashes: string[] },
    em: EntityManager,
  ): Promise<RedemptionBatch> {
    const [created] = await sqlRows<{ id: string }>(
      em,
      `INSERT INTO redemption_batches (name, credit, count, expires_at)
       VALUES ($1, $2::numeric, $3, $4::timestamptz) RETURNING id`,
      [b.name, b.credit.toFixed(), b.codeHashes.length, b.expiresAt],
    );
    await em.query(
      `INSERT INTO redemption_codes (batch_id, code_hash) SELECT $1, h FROM unnest($2::text[]) AS h`,
      [created.id, b.codeHashes],
    );
    const batch = await this.findBatch(created.id, em);
    if (!batch) throw new Error('redemption batch vanished');
    return batch;
  }

  async findBatch(
    id: string,
    em: EntityManager = this.ds.manager,
  ): Promise<RedemptionBatch | null> {
    if (!isUuid(id)) return null;
    const rows = await sqlRows<BatchRow>(em, `${BATCH} WHERE b.id = $1`, [id]);
    return rows[0] ? toBatch(rows[0]) : null;
  }

  async listBatches(limit: number, after: CursorKey | null): Promise<RedemptionBatch[]> {
    const rows = await sqlRows<BatchRow>(
      this.ds.manager,
      `${BATCH}
       WHERE ($1::timestamptz IS NULL OR (b.created_at, b.id) < ($1::timestamptz, $2::uuid))
       ORDER BY b.created_at DESC, b.id DESC LIMIT $3`,
      [after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    return rows.map(toBatch);
  }

  /**
   * Disables the batch and every code of it not yet redeemed. Each code's row lock orders
   * this against a concurrent redemption of it: whichever comes second finds the code taken.
   */
  async disableBatch(id: string, em: EntityManager): Promise<boolean> {
    if (!isUuid(id)) return false;
    const rows = await sqlRows<{ id: string }>(
      em,
      `UPDATE redemption_batches SET disabled_at = COALESCE(disabled_at, clock_timestamp())
       WHERE id = $1 RETURNING id`,
      [id],
    );
    if (rows.length === 0) return false;
    await em.query(
      `UPDATE redemption_codes SET disabled_at = clock_timestamp()
       WHERE batch_id = $1 AND redeemed_at IS NULL AND disabled_at IS NULL`,
      [id],
    );
    return true;
  }

  /**
   * Claims a code for an account: redeemed once, ever. Concurrent claims of one code queue on
   * its row lock; the first marks it redeemed and the others, re-checking `redeemed_at IS
   * NULL` on the row it left, update nothing. So 50 simultaneous attempts credit once.
   * Unknown, used, disabled and expired codes all give null.
   */
  async claim(codeHash: string, accountId: string, em: EntityManager): Promise<ClaimedCode | null> {
    const rows = await sqlRows<{ id: string; batch_id: string; name: string; credit: string }>(
      em,
      `UPDATE redemption_codes c SET redeemed_by = $2, redeemed_at = clock_timestamp()
       FROM redemption_batches b
       WHERE c.code_hash = $1 AND b.id = c.batch_id
         AND c.redeemed_at IS NULL AND c.disabled_at IS NULL AND b.disabled_at IS NULL
         AND (b.expires_at IS NULL OR b.expires_at > clock_timestamp())
       RETURNING c.id, b.id AS batch_id, b.name, b.credit`,
      [codeHash, accountId],
    );
    const r = rows[0];
    return r
      ? { codeId: r.id, batchId: r.batch_id, batchName: r.name, credit: money(r.credit) }
      : null;
  }

  /**
   * Serialises one account's redemption attempts until the transaction ends (an advisory
   * lock), so the failure count read next cannot be raced past by concurrent attempts.
   */
  async lockAttempts(accountId: string, em: EntityManager): Promise<void> {
    await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('redemptions:' || $1, 0))`, [
      accountId,
    ]);
  }

  /**
   * Seconds until the account may try again, when it made MAX_FAILED_ATTEMPTS failed
   * attempts in the last minute; null when it may try now.
   */
  async throttledFor(accountId: string, em: EntityManager): Promise<number | null> {
    const rows = await sqlRows<{ wait: number }>(
      em,
      `SELECT GREATEST(1, ceil(extract(epoch FROM attempted_at + interval '1 minute' - clock_timestamp())))::int AS wait
       FROM redemption_attempts
       WHERE account_id = $1 AND attempted_at > clock_timestamp() - interval '1 minute'
       ORDER BY attempted_at DESC OFFSET $2 LIMIT 1`,
      [accountId, MAX_FAILED_ATTEMPTS - 1],
    );
    return rows[0]?.wait ?? null;
  }

  /** Records a failed attempt, and forgets the account's attempts older than an hour. */
  async recordFailure(accountId: string, em: EntityManager): Promise<void> {
    await em.query(
      `DELETE FROM redemption_attempts WHERE account_id = $1 AND attempted_at < clock_timestamp() - interval '1 hour'`,
      [accountId],
    );
    await em.query(
      `INSERT INTO redemption_attempts (account_id, attempted_at) VALUES ($1, clock_timestamp())`,
      [accountId],
    );
  }
}
