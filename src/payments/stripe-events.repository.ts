import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { sqlRows } from '../database/sql.js';

/** SQL of the `stripe_events` table: the Stripe event ids already processed, and how. */
@Injectable()
export class StripeEventsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Claims an event id inside the transaction that applies its effect. A concurrent copy of
   * the event blocks on the primary key until that transaction ends, then gets false (already
   * done) if it committed, or the claim if it rolled back: at most once, never zero times.
   */
  async claim(id: string, type: string, em: EntityManager): Promise<boolean> {
    const rows = await sqlRows<{ id: string }>(
      em,
      `INSERT INTO stripe_events (id, type, outcome) VALUES ($1, $2, 'processing')
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [id, type],
    );
    return rows.length > 0;
  }

  async finish(
    id: string,
    topUpId: string | null,
    outcome: string,
    em: EntityManager,
  ): Promise<void> {
    await em.query(`UPDATE stripe_events SET top_up_id = $2, outcome = $3 WHERE id = $1`, [
      id,
      topUpId,
      outcome,
    ]);
  }

  async outcomeOf(id: string, em: EntityManager = this.ds.manager): Promise<string | null> {
    const rows = await sqlRows<{ outcome: string }>(
      em,
      `SELECT outcome FROM stripe_events WHERE id = $1`,
      [id],
    );
    return rows[0]?.outcome ?? null;
  }
}
