import { DataSource, EntityManager } from 'typeorm';
import { sqlRows } from './sql.js';

/**
 * Runs `fn` once per database, ever, in one transaction with the marker row: a seeded row an
 * admin later deletes stays deleted, and instances starting together seed once.
 */
export async function seedOnce(
  ds: DataSource,
  seed: string,
  fn: (em: EntityManager) => Promise<void>,
): Promise<void> {
  await ds.transaction(async (em) => {
    const rows = await sqlRows<unknown>(
      em,
      `INSERT INTO seed_runs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING name`,
      [seed],
    );
    if (rows.length > 0) await fn(em);
  });
}
