import type { QueryRunner } from 'typeorm';

/**
 * Replaces one passage of a SQL function's definition, as PostgreSQL keeps it
 * (pg_get_functiondef), and runs the result (a CREATE OR REPLACE FUNCTION). For a migration
 * that changes one statement of a long function: the migration shows only that statement.
 * Fails, and changes nothing, unless the passage occurs exactly once.
 */
export async function replaceInFunction(
  q: QueryRunner,
  signature: string,
  from: string,
  to: string,
): Promise<void> {
  const rows = (await q.query(`SELECT pg_get_functiondef($1::regprocedure) AS def`, [
    signature,
  ])) as { def: string }[];
  const def = rows[0]?.def ?? '';
  const at = def.indexOf(from);
  if (at < 0 || def.indexOf(from, at + 1) >= 0)
    throw new Error(`${signature} does not contain the passage to replace exactly once`);
  await q.query(def.slice(0, at) + to + def.slice(at + from.length));
}

/** usage_book's signature, as migration 1764850000000 created it. */
export const USAGE_BOOK = `usage_book(varchar[], text[], uuid[], uuid[], varchar[], varchar[], varchar[],
  numeric[], varchar[], numeric[], bigint[], int[], timestamptz[], bigint[], bigint[], int[], text[])`;
