import type { EntityManager } from 'typeorm';

export type Queryable = Pick<EntityManager, 'query'> & {
  queryRunner?: EntityManager['queryRunner'];
};

interface PgClient {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

interface PgPool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** The pg pool behind a DataSource or its manager, for prepared statements outside a transaction. */
function poolOf(db: Queryable): PgPool | null {
  const d = db as {
    driver?: { master?: PgPool };
    connection?: { driver?: { master?: PgPool } };
  };
  return d.driver?.master ?? d.connection?.driver?.master ?? null;
}

/**
 * Rows of a raw query. TypeORM's postgres driver answers UPDATE and DELETE with
 * `[rows, rowCount]` and everything else with `rows`; callers always want the rows.
 *
 * With a `name`, the statement runs as a named prepared statement (on the transaction's
 * connection inside one, else on whichever pooled connection is free): parsed and planned
 * once per connection instead of per call (the hot paths: ingestion and authorize).
 */
export async function sqlRows<T>(
  db: Queryable,
  sql: string,
  params: unknown[] = [],
  name?: string,
): Promise<T[]> {
  if (name && db.queryRunner) {
    const client = (await db.queryRunner.connect()) as PgClient;
    const result = await client.query({ name, text: sql, values: params });
    return result.rows as T[];
  }
  const pool = name && !db.queryRunner ? poolOf(db) : null;
  if (name && pool) {
    const result = await pool.query({ name, text: sql, values: params });
    return result.rows as T[];
  }
  const result: unknown = await db.query(sql, params);
  if (
    Array.isArray(result) &&
    result.length === 2 &&
    Array.isArray(result[0]) &&
    typeof result[1] === 'number'
  ) {
    return result[0] as T[];
  }
  return result as T[];
}
