/**
 * (10) The batch path's SQL alone: pgbench calls the service's own `usage_book` (what one
 * batch of events costs the database, with no Node.js in the way) on the service's tables
 * after the other scenarios, `batchSize` events a call, over every account: one client, two
 * clients over the same accounts, and two clients over disjoint halves of them.
 *
 * It separates the two bounds of the batch figure: the database's CPU per event (one client),
 * and the account row locks a transaction holds until it commits (two clients over the same
 * accounts run one after the other; over disjoint accounts, side by side).
 *
 * Every event is a copy of one event the service booked in the run (same model, price
 * version, counts and charge) put on an account picked by a hash, with that account's token
 * and the token's group and ratio as they stand, so usage_book's own checks pass; the run
 * fails if a call booked fewer events than it was given.
 */
import pg from 'pg';
import { CFG, log } from '../lib/config.js';
import { fmtInt } from '../lib/report.js';
import { runPgbench, type PgbenchResult } from '../lib/pgbench.js';
import { round } from '../lib/stats.js';

export interface BookAloneRun {
  name: string;
  clients: number;
  disjoint: boolean;
  calls: number;
  eventsPerSec: number;
  /** PostgreSQL's CPU (all its processes) per event booked, in µs. */
  pgCpuUsPerEvent: number | null;
  pgbench: PgbenchResult;
}

export interface BookAloneResult {
  eventsPerCall: number;
  accounts: number;
  runs: BookAloneRun[];
  /** Events the calls were given, and events usage_book booked (the same when all is well). */
  expectedEvents: number;
  bookedEvents: number;
  ok: boolean;
}

/** The bench's own helper tables in the service's (throw-away) database. */
const SETUP = `
  DROP TABLE IF EXISTS bench_book_accounts, bench_book_event;
  CREATE TABLE bench_book_accounts AS
    SELECT (row_number() OVER (ORDER BY t.account_id) - 1)::int AS n, t.id AS token_id, t.account_id,
           t.group_name, g.ratio
    FROM (SELECT DISTINCT ON (account_id) * FROM api_tokens ORDER BY account_id, id) t
    JOIN groups g ON g.name = t.group_name;
  CREATE UNIQUE INDEX ON bench_book_accounts (n);
  ANALYZE bench_book_accounts;
  CREATE TABLE bench_book_event AS
    SELECT model, charge, price_version_id, price_version, input_tokens, output_tokens, images,
           lines::text AS lines
    FROM usage_events WHERE outcome = 'charged' AND request_id LIKE 'b%' LIMIT 1;`;

/**
 * One call per run: `events` events, event g on account (hash of the run's tag and g) modulo
 * the accounts, or with `disjoint`, on the accounts of the client's parity only.
 */
const script = (events: number, accounts: number, disjoint: boolean): string => {
  const pick = disjoint
    ? `2 * ((hashint8(:tag::bigint + g) & 1048575) % ${Math.floor(accounts / 2)}) + :client_id % 2`
    : `(hashint8(:tag::bigint + g) & 1048575) % ${accounts}`;
  const col = (expr: string): string => `(SELECT array_agg(${expr} ORDER BY g) FROM e)`;
  return `\\set tag random(1, 9000000000000000000)
WITH e AS MATERIALIZED (
  SELECT g, a.*, ev.* FROM generate_series(1, ${events}) g
  JOIN bench_book_accounts a ON a.n = ${pick} CROSS JOIN bench_book_event ev
)
SELECT count(*) FROM usage_book(
  ${col(`('bk-' || :client_id || '-' || :tag || '-' || g)::varchar`)},
  ${col(`substr(md5(:tag || '-' || g), 1, 16)`)},
  ${col('account_id')}, ${col('token_id')}, ${col('model')},
  ${col(`'charged'::varchar`)}, ${col('NULL::varchar')}, ${col('charge')},
  ${col('group_name')}, ${col('ratio')}, ${col('price_version_id')}, ${col('price_version')},
  ${col('now()')}, ${col('input_tokens')}, ${col('output_tokens')}, ${col('images')},
  ${col('lines')});
`;
};

export async function bookAlone(o: {
  url: string;
  postmasterPid: number | null;
}): Promise<BookAloneResult> {
  const events = CFG.batchSize;
  const c = new pg.Client({ connectionString: o.url });
  await c.connect();
  try {
    await c.query(SETUP);
    const { rows } = await c.query<{ accounts: number; model: string | null }>(
      `SELECT (SELECT count(*) FROM bench_book_accounts)::int AS accounts,
              (SELECT model FROM bench_book_event) AS model`,
    );
    const accounts = rows[0].accounts;
    if (!rows[0].model || accounts < 2)
      throw new Error('book-alone: the run booked no batch event to copy');
    log(
      `(10) batch SQL alone: pgbench calling usage_book with ${events} events a call over ${fmtInt(accounts)} accounts, ${CFG.seconds} s a run`,
    );
    const runs: BookAloneRun[] = [];
    for (const [clients, disjoint] of [
      [1, false],
      [2, false],
      [2, true],
    ] as const) {
      const name = `${clients} client${clients > 1 ? 's' : ''}, ${
        disjoint ? 'disjoint halves of the accounts' : 'all accounts'
      }`;
      const p = await runPgbench({
        url: o.url,
        script: `book_alone_${clients}${disjoint ? '_disjoint' : ''}`,
        sql: script(events, accounts, disjoint),
        eventsPerTxn: events,
        clients,
        threads: clients,
        seconds: CFG.seconds,
        bin: CFG.pgbench,
        accounts: CFG.accounts,
        postmasterPid: o.postmasterPid,
      });
      const pgCores = p.cpu?.postgresPct === null || !p.cpu ? null : p.cpu.postgresPct / 100;
      const run: BookAloneRun = {
        name,
        clients,
        disjoint,
        calls: p.transactions,
        eventsPerSec: p.eventsPerSec,
        pgCpuUsPerEvent:
          pgCores === null || p.eventsPerSec <= 0
            ? null
            : round((pgCores / p.eventsPerSec) * 1e6, 1),
        pgbench: p,
      };
      log(
        `  → ${name}: ${fmtInt(run.eventsPerSec)} events/s, ${run.pgCpuUsPerEvent ?? '—'} µs of PostgreSQL CPU per event`,
      );
      runs.push(run);
    }
    const booked = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM usage_events WHERE request_id LIKE 'bk-%'`,
    );
    const expectedEvents = runs.reduce((n, r) => n + r.calls * events, 0);
    const bookedEvents = Number(booked.rows[0].n);
    return {
      eventsPerCall: events,
      accounts,
      runs,
      expectedEvents,
      bookedEvents,
      ok: bookedEvents === expectedEvents,
    };
  } finally {
    await c.end();
  }
}
