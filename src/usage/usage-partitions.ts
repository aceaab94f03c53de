import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app.config.js';
import { sqlRows } from '../database/sql.js';

/** Months made ready ahead of the current one, so a booking never finds its month missing. */
const MONTHS_AHEAD = 3;
const HOUR_MS = 3_600_000;
const PARTITION = /^usage_events_(\d{4})_(\d{2})$/;

/** First day (UTC) of the month `delta` months from `at`'s, as YYYY-MM-DD. */
export const monthStart = (at: Date, delta = 0): string =>
  new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + delta, 1)).toISOString().slice(0, 10);

export interface RetentionResult {
  dropped: string[];
  /** Months past retention kept because an event in them still waits for an admin's review. */
  keptForReview: string[];
}

/**
 * The monthly partitions of usage_events: every instance keeps this month and the next three
 * ready (at start and hourly; usage_events_add_month is idempotent and serialised by an
 * advisory lock), and with USAGE_RETENTION_MONTHS drops months older than that many before
 * the current one. A dropped month takes only raw events: usage_daily, the ledger, statements
 * and the request register (usage_requests: a replay is still a duplicate) stay whole.
 */
@Injectable()
export class UsagePartitions implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UsagePartitions.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private readonly retentionMonths: number | null;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.retentionMonths = config.get('usage', { infer: true }).retentionMonths;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.maintain();
    this.timer = setInterval(() => this.tick(), HOUR_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.maintain()
      .catch((err: unknown) => this.logger.warn(`usage partition upkeep failed: ${String(err)}`))
      .finally(() => (this.running = null));
  }

  /** Makes the coming months ready, then applies retention when it is set. */
  async maintain(now = new Date()): Promise<RetentionResult> {
    await this.ensureMonths(now);
    if (this.retentionMonths === null) return { dropped: [], keptForReview: [] };
    const result = await this.applyRetention(this.retentionMonths, now);
    if (result.dropped.length > 0)
      this.logger.log(`retention dropped usage events of ${result.dropped.join(', ')}`);
    if (result.keptForReview.length > 0)
      this.logger.warn(
        `retention kept ${result.keptForReview.join(', ')}: events there still wait for review`,
      );
    return result;
  }

  async ensureMonths(now = new Date()): Promise<void> {
    const months = Array.from({ length: MONTHS_AHEAD + 1 }, (_, i) => monthStart(now, i));
    await sqlRows(this.ds, `SELECT usage_events_add_month(m) FROM unnest($1::date[]) AS m`, [
      months,
    ]);
  }

  /** Months (YYYY-MM) that have a partition, oldest first. */
  async months(): Promise<string[]> {
    const rows = await sqlRows<{ name: string }>(
      this.ds,
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'usage_events'::regclass ORDER BY 1`,
    );
    return rows.flatMap((r) => {
      const m = PARTITION.exec(r.name);
      return m ? [`${m[1]}-${m[2]}`] : [];
    });
  }

  /**
   * Drops the partitions of months that ended more than `keep` months before the current
   * one. A month in which an event still waits for review is kept (its approval must find
   * the event), and said so.
   */
  async applyRetention(keep: number, now = new Date()): Promise<RetentionResult> {
    const oldestKept = monthStart(now, -keep).slice(0, 7);
    const result: RetentionResult = { dropped: [], keptForReview: [] };
    for (const month of await this.months()) {
      if (month >= oldestKept) continue;
      const table = `usage_events_${month.replace('-', '_')}`;
      const dropped = await this.ds.transaction(async (em) => {
        await em.query(`SELECT pg_advisory_xact_lock(hashtext('usage_events_partitions'))`);
        const [pending] = await sqlRows<{ waiting: boolean }>(
          em,
          `SELECT EXISTS (SELECT 1 FROM ${table} WHERE outcome = 'review') AS waiting`,
        );
        if (pending.waiting) return false;
        await em.query(`DROP TABLE ${table}`);
        return true;
      });
      (dropped ? result.dropped : result.keptForReview).push(month);
    }
    return result;
  }
}
