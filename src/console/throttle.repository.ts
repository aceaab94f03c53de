import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface ThrottleCount {
  key: string;
  /** Attempts counted in the key's current one-minute window, this one included. */
  attempts: number;
  /** Whole seconds until the window ends (at least 1). */
  retryAfterSeconds: number;
}

/**
 * console_throttle: attempts per key in fixed one-minute windows, in PostgreSQL so that every
 * instance counts the same attempts. One upsert counts an attempt on several keys at once;
 * the row locks make concurrent attempts each see a distinct count.
 */
@Injectable()
export class ThrottleRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async count(keys: string[]): Promise<ThrottleCount[]> {
    // Sorted, so two attempts locking the same keys take the row locks in the same order.
    const sorted = [...new Set(keys)].sort();
    const rows = await sqlRows<{ key: string; attempts: number; retry_after: number }>(
      this.ds,
      `INSERT INTO console_throttle AS t (key, window_start, attempts)
       SELECT k, now(), 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i
       ON CONFLICT (key) DO UPDATE SET
         attempts = CASE WHEN t.window_start <= now() - interval '1 minute' THEN 1 ELSE t.attempts + 1 END,
         window_start = CASE WHEN t.window_start <= now() - interval '1 minute' THEN now() ELSE t.window_start END
       RETURNING key, attempts,
         GREATEST(1, ceil(extract(epoch FROM window_start + interval '1 minute' - now())))::int AS retry_after`,
      [sorted],
    );
    return rows.map((r) => ({
      key: r.key,
      attempts: r.attempts,
      retryAfterSeconds: r.retry_after,
    }));
  }

  /** Takes back one attempt that turned out not to be a failure (a sign-in that succeeded). */
  async forgive(keys: string[]): Promise<void> {
    // One key per statement: never two row locks held at once, so no lock-order deadlock.
    for (const key of [...new Set(keys)].sort()) {
      await this.ds.query(
        `UPDATE console_throttle SET attempts = GREATEST(attempts - 1, 0)
         WHERE key = $1 AND window_start > now() - interval '1 minute'`,
        [key],
      );
    }
  }

  /** Windows that ended long ago say nothing any more. */
  async purge(): Promise<void> {
    await this.ds.query(
      `DELETE FROM console_throttle WHERE window_start < now() - interval '10 minutes'`,
    );
  }
}
