import { appendFileSync } from 'node:fs';
import type pg from 'pg';
import type { Response, Test } from 'supertest';
import { contractViolation } from '../helpers/fuzz.js';
import { type FuzzContext, SEED } from './context.js';
import type { Method, Operation } from './walker.js';

/*
 * The runner: sends each case, checks what every response owes the contract (below 500 and,
 * when an error, exactly the contract's body) and proves a rejected request wrote nothing. A
 * digest of every row of every table is taken after each request, so the request that wrote
 * is the one named.
 */

/** The tables the contract's data lives in; all of them must be fingerprinted. */
export const KNOWN_TABLES = [
  'accounts',
  'ledger_entries',
  'usage_events',
  'api_tokens',
  'groups',
  'price_versions',
  'promotions',
  'top_ups',
  'adjustments',
  'stripe_events',
  'usage_daily',
  'stripe_refunds',
  'stripe_disputes',
  'redemption_batches',
  'redemption_codes',
  'redemption_attempts',
];

/**
 * Tables that record refused attempts on purpose (sign-in throttling; a redemption code that
 * does not redeem is a failed attempt the throttle remembers).
 */
export const REFUSAL_COUNTERS = ['console_throttle', 'redemption_attempts'];

export interface FuzzRequest {
  what: string;
  op: Operation;
  /** URL path and query, already encoded. */
  url: string;
  /** Raw body text or bytes; undefined: no body. */
  body?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** The Authorization header; undefined: the right role's key, null: none. */
  auth?: string | null;
  /** Statuses the case must get (beyond the generic checks). */
  expect?: number[];
  /** A 400 validation_failed must name this field (or a part of it). */
  field?: string;
}

export interface Outcome {
  status: number;
  wrote: string[];
}

export interface Fingerprint {
  [table: string]: string;
}

/** Every table of the schema (but the migrations bookkeeping), to fingerprint. */
export async function tablesOf(sql: pg.Pool): Promise<string[]> {
  const r = await sql.query<{ t: string }>(
    `SELECT table_name AS t FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
       AND table_name NOT IN ('migrations', 'typeorm_metadata')
     ORDER BY table_name`,
  );
  return r.rows.map((x) => x.t);
}

/** Row count and a digest of every row of every table: any insert, update or delete shows. */
export async function fingerprint(sql: pg.Pool, tables: string[]): Promise<Fingerprint> {
  const parts = tables.map(
    (t) =>
      `SELECT '${t}' AS t, count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS f FROM "${t}" x`,
  );
  const r = await sql.query<{ t: string; f: string }>(parts.join(' UNION ALL '));
  return Object.fromEntries(r.rows.map((x) => [x.t, x.f]));
}

export function diffFingerprints(a: Fingerprint, b: Fingerprint): string[] {
  return Object.keys({ ...a, ...b }).filter((k) => a[k] !== b[k]);
}

/** Row counts only, for a human-readable before/after. */
export async function rowCounts(sql: pg.Pool, tables: string[]): Promise<Record<string, number>> {
  const parts = tables.map((t) => `SELECT '${t}' AS t, count(*)::int AS n FROM "${t}"`);
  const r = await sql.query<{ t: string; n: number }>(parts.join(' UNION ALL '));
  return Object.fromEntries(r.rows.map((x) => [x.t, x.n]));
}

const describeReq = (r: FuzzRequest): string => {
  const body =
    r.body === undefined
      ? ''
      : ` body=${(typeof r.body === 'string' ? r.body : `<${r.body.length} bytes>`).slice(0, 160)}`;
  return `[${r.what}] ${r.op.method.toUpperCase()} ${r.url.slice(0, 200)}${body}`;
};

// A 400 about one field names that field (or a part of it, or the object holding it).
// A cross-field rule may name a sibling in the same object (usage.inputTokensDetails for
// usage.inputTokens), so a nested field counts as named when its object is.
const named = (details: { field: string }[] | undefined, field: string): boolean => {
  const parent = field.includes('.') ? field.slice(0, field.lastIndexOf('.')) : null;
  return (details ?? []).some(
    (d) =>
      d.field === field ||
      d.field.startsWith(`${field}.`) ||
      field.startsWith(`${d.field}.`) ||
      (parent !== null && d.field.startsWith(`${parent}.`)),
  );
};

export class Runner {
  /** Every table of the schema, fingerprinted after each request. */
  tables: string[] = [];
  private last: Fingerprint = {};
  /** Tables that some accepted (2xx) request was allowed to change. */
  readonly changedByAccepted = new Set<string>();
  readonly accepted: string[] = [];
  readonly statuses = new Map<number, number>();
  /** Operations that got at least one fuzzed request. */
  readonly touched = new Set<string>();
  total = 0;

  constructor(private readonly ctx: FuzzContext) {}

  /** Takes the first fingerprint: from now on, every write is laid at one request's door. */
  async start(): Promise<void> {
    this.tables = await tablesOf(this.ctx.t.sql);
    this.last = await fingerprint(this.ctx.t.sql, this.tables);
  }

  private open(method: Method, url: string): Test {
    const http = this.ctx.t.http;
    switch (method) {
      case 'get':
        return http.get(url);
      case 'post':
        return http.post(url);
      case 'put':
        return http.put(url);
      case 'patch':
        return http.patch(url);
      case 'delete':
        return http.delete(url);
    }
  }

  /** Sends one case and checks everything every response owes the contract. */
  async send(r: FuzzRequest, failures: string[]): Promise<Outcome> {
    let req = this.open(r.op.method, r.url);
    const own = this.ctx.keyFor(r.op.role);
    const auth = r.auth === undefined ? (own === null ? null : `Bearer ${own}`) : r.auth;
    if (auth !== null) req = req.set('Authorization', auth);
    for (const [k, v] of Object.entries(r.headers ?? {})) req = req.set(k, v);
    if (r.op.path.endsWith('/adjustments') && !(r.headers && 'Idempotency-Key' in r.headers)) {
      req = req.set('Idempotency-Key', `fz-${this.ctx.uniq()}`);
    }
    // As the console sends it: without it a console POST is refused (CSRF) before its body is read.
    if (r.op.path.startsWith('/v1/console/')) req = req.set('X-Requested-With', 'fuzz');
    if (r.body !== undefined) {
      req = req.set('Content-Type', r.contentType ?? 'application/json');
      req = req.send(r.body);
    }
    let res: Response;
    try {
      res = await req;
    } catch (err) {
      failures.push(`${describeReq(r)} → request failed: ${String(err)}`);
      return { status: 0, wrote: [] };
    }
    this.total++;
    this.touched.add(`${r.op.method} ${r.op.path}`);
    this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
    const text = res.text ?? '';
    const problems: string[] = [];
    if (res.status >= 500) problems.push(`status ${res.status}`);
    let body: unknown;
    if (res.status >= 400) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const v = contractViolation(res.status, body, text);
      if (v) problems.push(v);
      if (!/^application\/json/.test(String(res.headers['content-type'] ?? '')))
        problems.push(`content-type ${String(res.headers['content-type'])}`);
    }
    if (r.expect && !r.expect.includes(res.status)) problems.push(`expected ${r.expect.join('|')}`);

    const batch = r.op.path === '/v1/usage-events/batch';
    if (
      r.field &&
      res.status === 400 &&
      (body as { error?: { code?: string } })?.error?.code === 'validation_failed'
    ) {
      const details = (body as { error: { details?: { field: string }[] } }).error.details;
      if (!named(details, r.field))
        problems.push(`details do not name ${r.field}: ${JSON.stringify(details)}`);
    }
    // A batch answers 200 with one result per event: a rejected one carries the contract's error.
    let batchWrites = true;
    if (batch && res.status === 200) {
      const results =
        (res.body as { results?: { outcome: string; error?: unknown }[] }).results ?? [];
      batchWrites = results.some((x) => x.outcome !== 'rejected');
      for (const x of results.filter((y) => y.outcome === 'rejected')) {
        const v = contractViolation(400, { error: x.error }, JSON.stringify(x.error));
        if (v) problems.push(`rejected result: ${v}`);
      }
      const eventField = r.field?.startsWith('events.0.')
        ? r.field.slice('events.0.'.length)
        : undefined;
      const first = results[0] as
        { outcome: string; error?: { code?: string; details?: { field: string }[] } } | undefined;
      if (
        eventField &&
        first?.outcome === 'rejected' &&
        first.error?.code === 'validation_failed' &&
        !named(first.error.details, eventField)
      ) {
        problems.push(`rejected event does not name ${eventField}: ${JSON.stringify(first.error)}`);
      }
    }

    // Nothing written unless the request was a mutation that succeeded.
    const now = await fingerprint(this.ctx.t.sql, this.tables);
    // Refused sign-ins are counted by design (the throttle): that table may change on a 401.
    const wrote = diffFingerprints(this.last, now).filter((x) => !REFUSAL_COUNTERS.includes(x));
    const mayWrite = r.op.method !== 'get' && res.status >= 200 && res.status < 300 && batchWrites;
    if (wrote.length > 0 && !mayWrite) problems.push(`wrote to ${wrote.join(', ')}`);
    if (mayWrite) {
      this.accepted.push(`${describeReq(r).slice(0, 200)} → ${res.status}`);
      wrote.forEach((x) => this.changedByAccepted.add(x));
    }
    this.last = now;

    if (problems.length > 0) {
      failures.push(
        `${describeReq(r)} → ${res.status} ${text.slice(0, 300)} :: ${problems.join('; ')}`,
      );
    }
    return { status: res.status, wrote };
  }

  async runAll(cases: FuzzRequest[]): Promise<string[]> {
    const failures: string[] = [];
    for (const c of cases) await this.send(c, failures);
    return failures;
  }

  report(failures: string[]): string {
    if (failures.length === 0) return '';
    if (process.env.FUZZ_REPORT)
      appendFileSync(process.env.FUZZ_REPORT, `${failures.join('\n')}\n`);
    return `${failures.length} failing case(s) (FUZZ_SEED=${SEED}):\n${failures.slice(0, 30).join('\n')}`;
  }

  /** The FUZZ_VERBOSE summary: requests, statuses and every accepted mutation. */
  summary(): string {
    return (
      `fuzz: ${this.total} requests; statuses ${JSON.stringify(Object.fromEntries(this.statuses))}; ` +
      `${this.accepted.length} accepted mutations:\n${this.accepted.join('\n')}`
    );
  }
}
