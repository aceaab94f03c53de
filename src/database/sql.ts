import type { EntityManager } from 'typeorm';

export type Queryable = Pick<EntityManager, 'query'>;

/**
 * Rows of a raw query. TypeORM's postgres driver answers UPDATE and DELETE with
 * `[rows, rowCount]` and everything else with `rows`; callers always want the rows.
 */
export async function sqlRows<T>(db: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  const result: unknown = await db.query(sql, params);
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}
