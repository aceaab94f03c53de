/**
 * A month's statement for an account with 1,000,000 usage events: target < 300 ms.
 *
 * Setup (not measured): one account and token created through the API, then, straight in SQL
 * and set-based, the current month's usage events, their ledger entries (one consistent
 * balance chain, opening from an entry in the previous month), three paid top-ups, a refund,
 * two adjustments and the daily roll-ups, as ingestion would have written them. Measured:
 * GET /v1/admin/accounts/{id}/statements/{YYYY-MM}, each response checked to reconcile.
 */
import { Decimal } from 'decimal.js';
import pg from 'pg';
import { log as benchLog } from '../lib/config.js';
import { fmtInt, fmtMs } from '../lib/report.js';
import { summarize } from '../lib/stats.js';

export interface StatementBenchResult {
  events: number;
  p50Ms: number;
  maxMs: number;
  runs: number;
}

const EVENTS = 1_000_000;
const RUNS = 10;
const OPENING = '1000000.00';
/** Every SKIP_EVERY-th event is skipped (upstream_error, charge 0). */
const SKIP_EVERY = 50;
/** Event i uses MODELS[i % 3]: the seeded catalog's charges at ratio 1. */
const MODELS = [
  // What pricing/counts.ts stores for such events: the tokens, and the images billed.
  { model: 'gpt-image-2', charge: '0.035062', input: 89, output: 1145, images: 1 },
  { model: 'gpt-image-2-all', charge: '0.03', input: 0, output: 0, images: 1 },
  { model: 'gpt-image-2-vip', charge: '0.06', input: 0, output: 0, images: 2 },
] as const;
const TOP_UPS = [
  { at: 0.1, credit: '1000.00', paid: '850.00' },
  { at: 0.4, credit: '250.00', paid: '212.50' },
  { at: 0.7, credit: '1.00', paid: '0.85' },
];
const REFUND = { at: 0.5, amount: '-100.00' };
const ADJUSTMENTS = [
  { at: 0.3, amount: '12.3456789012' },
  { at: 0.9, amount: '-0.0000000001' },
];

const log = (m: string): void => {
  process.stdout.write(`[statement-bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

async function api<T>(
  baseUrl: string,
  adminKey: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${adminKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** What the statement must say, computed here from the generator's rules, not read back. */
function expected(): {
  requests: number;
  charged: number;
  skipped: number;
  charge: Decimal;
  byModel: Map<string, { requests: number; charged: number; skipped: number; charge: Decimal }>;
} {
  const counts = MODELS.map(() => ({ requests: 0, charged: 0 }));
  for (let i = 1; i <= EVENTS; i++) {
    const c = counts[i % 3];
    c.requests++;
    if (i % SKIP_EVERY !== 0) c.charged++;
  }
  const byModel = new Map(
    MODELS.map((m, k) => [
      m.model,
      {
        requests: counts[k].requests,
        charged: counts[k].charged,
        skipped: counts[k].requests - counts[k].charged,
        charge: new Decimal(m.charge).times(counts[k].charged),
      },
    ]),
  );
  const all = [...byModel.values()];
  return {
    requests: EVENTS,
    charged: all.reduce((n, m) => n + m.charged, 0),
    skipped: all.reduce((n, m) => n + m.skipped, 0),
    charge: all.reduce((s, m) => s.plus(m.charge), new Decimal(0)),
    byModel,
  };
}

/** Seeds the account's current month and returns that month (YYYY-MM, the database's clock). */
async function seed(db: pg.Client, accountId: string, tokenId: string): Promise<string> {
  await db.query('SET synchronous_commit = off');
  // Foreign keys are consistent by construction here; skipping their per-row checks keeps the
  // setup short. Needs superuser (the embedded server); without it the checks just run.
  await db.query(`SET session_replication_role = replica`).catch(() => undefined);
  await db.query('BEGIN');
  const month = await db.query<{ s: Date; e: Date; period: string }>(
    `SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS s, now() AS e,
            to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM') AS period`,
  );
  const { s: monthStart, e: now, period } = month.rows[0];
  const at = (f: number): string =>
    new Date(monthStart.getTime() + (now.getTime() - monthStart.getTime()) * f).toISOString();

  // The opening balance: one credit booked the day before the month started.
  await db.query(
    `INSERT INTO ledger_entries (account_id, type, amount, balance_after, description, reference, created_at)
     VALUES ($1, 'adjustment', $2, $2, 'statement bench opening credit', $3, $4::timestamptz - interval '1 day')`,
    [accountId, OPENING, `stmt-bench-opening-${accountId}`, monthStart.toISOString()],
  );

  await db.query(
    `INSERT INTO usage_events (request_id, account_id, token_id, model, outcome, reason, charge, group_name,
       ratio, price_version_id, price_version, occurred_at, recorded_at, input_tokens, output_tokens, images)
     SELECT 'stmt-bench-' || $1 || '-' || i, $1::uuid, $2::uuid, m.model,
            CASE WHEN i % $4 = 0 THEN 'skipped' ELSE 'charged' END,
            CASE WHEN i % $4 = 0 THEN 'upstream_error' END,
            CASE WHEN i % $4 = 0 THEN 0 ELSE m.charge END,
            'default', 1, pv.id, pv.version, ts, ts, m.input, m.output,
            CASE WHEN i % $4 = 0 THEN 0 ELSE m.images END
     FROM generate_series(1, $3::int) AS i
     CROSS JOIN LATERAL (SELECT $5::timestamptz + ($6::timestamptz - $5::timestamptz) * (i::float8 / ($3::int + 1)) AS ts) t
     JOIN unnest($7::int[], $8::varchar[], $9::numeric[], $10::bigint[], $11::bigint[], $12::int[])
       AS m(k, model, charge, input, output, images) ON m.k = i % 3
     JOIN LATERAL (SELECT id, version FROM price_versions p WHERE p.model = m.model ORDER BY version DESC LIMIT 1) pv ON true`,
    [
      accountId,
      tokenId,
      EVENTS,
      SKIP_EVERY,
      monthStart.toISOString(),
      now.toISOString(),
      MODELS.map((_, k) => k),
      MODELS.map((m) => m.model),
      MODELS.map((m) => m.charge),
      MODELS.map((m) => m.input),
      MODELS.map((m) => m.output),
      MODELS.map((m) => m.images),
    ],
  );
  // The request register (usage_requests), as ingestion writes it beside each event.
  await db.query(
    `INSERT INTO usage_requests (key, fingerprint, account_id, recorded_at, outcome, charge)
     SELECT usage_request_key(request_id), ('x' || left(md5(request_id), 16))::bit(64)::bigint,
            account_id, recorded_at, outcome, charge
     FROM usage_events WHERE account_id = $1`,
    [accountId],
  );

  const topUpIds: string[] = [];
  for (const tu of TOP_UPS) {
    const r = await db.query<{ id: string }>(
      `INSERT INTO top_ups (account_id, status, credit, price, amount_paid, paid_at, created_at, updated_at)
       VALUES ($1, 'paid', $2, $3, $3, $4, $4, $4) RETURNING id`,
      [accountId, tu.credit, tu.paid, at(tu.at)],
    );
    topUpIds.push(r.rows[0].id);
  }
  const others = [
    ...TOP_UPS.map((tu, k) => ({
      at: at(tu.at),
      type: 'top_up',
      amount: tu.credit,
      description: 'statement bench top-up',
      reference: topUpIds[k],
    })),
    {
      at: at(REFUND.at),
      type: 'refund',
      amount: REFUND.amount,
      description: 'statement bench refund',
      reference: `ch_stmt_bench_${accountId}:10000`,
    },
    ...ADJUSTMENTS.map((a, k) => ({
      at: at(a.at),
      type: 'adjustment',
      amount: a.amount,
      description: 'statement bench adjustment',
      reference: `stmt-bench-adjustment-${accountId}-${k}`,
    })),
  ];

  // One balance chain in booking order: ids follow created_at, as the account lock makes them.
  await db.query(
    `WITH moves AS (
       SELECT e.recorded_at AS created_at, e.id AS seq, 'usage'::varchar AS type, -e.charge AS amount,
              e.model || ' request ' || e.request_id AS description, e.request_id::text AS reference
       FROM usage_events e WHERE e.account_id = $1 AND e.outcome = 'charged'
       UNION ALL
       SELECT o.created_at, 0, o.type, o.amount, o.description, o.reference
       FROM unnest($2::timestamptz[], $3::varchar[], $4::numeric[], $5::text[], $6::text[])
         AS o(created_at, type, amount, description, reference)
     )
     INSERT INTO ledger_entries (account_id, type, amount, balance_after, description, reference, created_at)
     SELECT $1, type, amount,
            $7::numeric + sum(amount) OVER (ORDER BY created_at, seq ROWS UNBOUNDED PRECEDING),
            description, reference, created_at
     FROM moves ORDER BY created_at, seq`,
    [
      accountId,
      others.map((o) => o.at),
      others.map((o) => o.type),
      others.map((o) => o.amount),
      others.map((o) => o.description),
      others.map((o) => o.reference),
      OPENING,
    ],
  );

  // The roll-ups ingestion keeps (UsageService rollupsOf): tokens of every event, images of
  // charged events (1 when the event gave none).
  await db.query(
    `INSERT INTO usage_daily (account_id, day, model, requests, charged, skipped, input_tokens, output_tokens, images, charge)
     SELECT account_id, (recorded_at AT TIME ZONE 'UTC')::date, model, count(*),
            count(*) FILTER (WHERE outcome = 'charged'), count(*) FILTER (WHERE outcome = 'skipped'),
            sum(input_tokens), sum(output_tokens), sum(images),
            sum(charge)
     FROM usage_events WHERE account_id = $1
     GROUP BY 1, 2, 3`,
    [accountId],
  );
  await db.query(
    `UPDATE accounts SET balance = (SELECT balance_after FROM ledger_entries WHERE account_id = $1
                                    ORDER BY created_at DESC, id DESC LIMIT 1)
     WHERE id = $1`,
    [accountId],
  );
  await db.query('COMMIT');
  await db.query('ANALYZE usage_events');
  await db.query('ANALYZE ledger_entries');
  await db.query('ANALYZE usage_daily');
  return period;
}

interface StatementBody {
  period: string;
  openingBalance: string;
  topUps: { count: number; credit: string; cashPaid: string };
  usage: {
    requests: number;
    charged: number;
    skipped: number;
    charge: string;
    byModel: {
      model: string;
      requests: number;
      charged: number;
      skipped: number;
      charge: string;
    }[];
  };
  refunds: string;
  adjustments: string;
  closingBalance: string;
}

function check(s: StatementBody, balance: string): void {
  const want = expected();
  const fail = (what: string, got: unknown, exp: unknown): never => {
    throw new Error(`statement ${what}: got ${String(got)}, expected ${String(exp)}`);
  };
  const eq = (what: string, got: Decimal.Value, exp: Decimal.Value): void => {
    if (!new Decimal(got).eq(exp)) fail(what, got, exp);
  };
  eq('openingBalance', s.openingBalance, OPENING);
  if (s.topUps.count !== TOP_UPS.length) fail('topUps.count', s.topUps.count, TOP_UPS.length);
  eq(
    'topUps.credit',
    s.topUps.credit,
    TOP_UPS.reduce((x, t) => x.plus(t.credit), new Decimal(0)),
  );
  eq(
    'topUps.cashPaid',
    s.topUps.cashPaid,
    TOP_UPS.reduce((x, t) => x.plus(t.paid), new Decimal(0)),
  );
  eq('refunds', s.refunds, new Decimal(REFUND.amount).neg());
  eq(
    'adjustments',
    s.adjustments,
    ADJUSTMENTS.reduce((x, a) => x.plus(a.amount), new Decimal(0)),
  );
  if (s.usage.requests !== want.requests) fail('usage.requests', s.usage.requests, want.requests);
  if (s.usage.charged !== want.charged) fail('usage.charged', s.usage.charged, want.charged);
  if (s.usage.skipped !== want.skipped) fail('usage.skipped', s.usage.skipped, want.skipped);
  eq('usage.charge', s.usage.charge, want.charge);
  for (const m of s.usage.byModel) {
    const w = want.byModel.get(m.model);
    if (
      !w ||
      w.requests !== m.requests ||
      w.charged !== m.charged ||
      w.skipped !== m.skipped ||
      !w.charge.eq(m.charge)
    ) {
      fail(`usage.byModel ${m.model}`, JSON.stringify(m), JSON.stringify(w));
    }
  }
  const closing = new Decimal(s.openingBalance)
    .plus(s.topUps.credit)
    .minus(s.usage.charge)
    .minus(s.refunds)
    .plus(s.adjustments);
  eq(
    'closingBalance (opening + top-ups − usage − refunds + adjustments)',
    s.closingBalance,
    closing,
  );
  eq('closingBalance (the account balance)', s.closingBalance, balance);
}

export async function statementBench(opts: {
  pgUrl: string;
  baseUrl: string;
  adminKey: string;
}): Promise<StatementBenchResult> {
  const base = opts.baseUrl.replace(/\/$/, '');
  const account = await api<{ id: string }>(base, opts.adminKey, 'POST', '/v1/admin/accounts', {
    name: 'statement bench',
  });
  const token = await api<{ id: string }>(
    base,
    opts.adminKey,
    'POST',
    `/v1/admin/accounts/${account.id}/tokens`,
    {
      name: 'statement bench',
    },
  );

  const t0 = performance.now();
  const db = new pg.Client({ connectionString: opts.pgUrl });
  await db.connect();
  let period: string;
  try {
    period = await seed(db, account.id, token.id);
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await db.end();
  }
  log(
    `setup: ${EVENTS.toLocaleString('en-US')} events with their ledger and roll-ups in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const { balance } = await api<{ balance: string }>(
    base,
    opts.adminKey,
    'GET',
    `/v1/admin/accounts/${account.id}`,
  );
  const path = `/v1/admin/accounts/${account.id}/statements/${period}`;
  check(await api<StatementBody>(base, opts.adminKey, 'GET', path), balance); // warm-up, checked too
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    const s = await api<StatementBody>(base, opts.adminKey, 'GET', path);
    samples.push(performance.now() - start);
    check(s, balance);
  }
  const lat = summarize(samples);
  log(
    `GET ${period} statement × ${RUNS}: p50 ${lat.p50.toFixed(2)} ms, max ${lat.max.toFixed(2)} ms (target < 300 ms)`,
  );
  return { events: EVENTS, p50Ms: lat.p50, maxMs: lat.max, runs: RUNS };
}

/** (9) on the bench's service, logged as a bench step; null with BENCH_SKIP_STATEMENT=1. */
export async function statementScenario(opts: {
  pgUrl: string;
  baseUrl: string;
  adminKey: string;
}): Promise<StatementBenchResult | null> {
  if (process.env.BENCH_SKIP_STATEMENT === '1') return null;
  benchLog('(9) statement: 1,000,000 usage events in one account, then its month statement timed');
  const r = await statementBench(opts);
  benchLog(
    `  → p50 ${fmtMs(r.p50Ms)} ms, max ${fmtMs(r.maxMs)} ms over ${r.runs} runs (${fmtInt(r.events)} events)`,
  );
  return r;
}
