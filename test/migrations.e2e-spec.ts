import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { createDataSource, MIGRATIONS, runMigrations } from '../src/database/data-source.js';

/** The schema as the catalog describes it: tables, columns, constraints, indexes, triggers, functions. */
async function schemaOf(ds: DataSource): Promise<string[]> {
  const rows = await ds.query<{ d: string }[]>(`
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' ||
           COALESCE(column_default, '') AS d
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    ORDER BY 1`);
  // TypeORM's own bookkeeping table is not part of the schema under test.
  return rows.map((r) => r.d).filter((d) => !/\bmigrations\b/.test(d));
}

describe('migrations', () => {
  const server = process.env.TEST_PG_SERVER_URL ?? '';
  const name = `billing_mig_${Date.now()}_${randomBytes(3).toString('hex')}`;
  let ds: DataSource;

  beforeAll(async () => {
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(`CREATE DATABASE ${name}`);
    await c.end();
    const u = new URL(server);
    u.pathname = `/${name}`;
    ds = await createDataSource(u.toString(), 2).initialize();
  });
  afterAll(async () => {
    await ds.destroy();
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });

  it('run up, all the way down and up again to the same schema', async () => {
    const ran = await runMigrations(ds);
    expect(ran).toHaveLength(MIGRATIONS.length);
    const up = await schemaOf(ds);
    expect(up.length).toBeGreaterThan(50);
    for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'all' });
    expect(await schemaOf(ds)).toEqual([]);
    expect(await runMigrations(ds)).toHaveLength(MIGRATIONS.length);
    expect(await schemaOf(ds)).toEqual(up);
  });
});
