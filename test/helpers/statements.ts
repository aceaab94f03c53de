import pg from 'pg';

/** Named prepared statements the service ran, in order, for tests that count round trips. */
export interface StatementWatch {
  /** The names among `names` run since the last take(), in order; forgets everything seen. */
  take(): string[];
  /** Puts the clients' query back. */
  restore(): void;
}

/**
 * Watches the named statements of `names` that any pg client runs: on the transaction's
 * client inside a transaction, and on the pooled client the pool lends outside one.
 */
export function watchNamedStatements(names: string[]): StatementWatch {
  let ran: string[] = [];
  const seen = (cfg: unknown): void => {
    const name = typeof cfg === 'object' && cfg !== null ? (cfg as { name?: string }).name : null;
    if (name && names.includes(name)) ran.push(name);
  };
  type Query = (this: void, ...a: unknown[]) => unknown;
  const proto = pg.Client.prototype as unknown as { query: Query };
  const clientQuery = proto.query;
  proto.query = function (this: unknown, ...a: unknown[]) {
    seen(a[0]);
    return Reflect.apply(clientQuery, this, a) as unknown;
  };
  return {
    take: () => {
      const out = ran;
      ran = [];
      return out;
    },
    restore: () => {
      proto.query = clientQuery;
    },
  };
}
