import type pg from 'pg';

/**
 * Helpers of the fuzz e2e tests: a seeded generator (runs are reproducible), hostile values,
 * JSON with literals JSON.stringify cannot write (1e400, -0, 2^53+1), the contract's error
 * body check and a fingerprint of every table to prove a rejected request wrote nothing.
 */

/** mulberry32: small, fast and good enough to pick test cases; the same seed, the same run. */
export function prng(seed: number): {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  sample<T>(xs: readonly T[], n: number): T[];
} {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)],
    sample<T>(xs: readonly T[], n: number): T[] {
      const copy = [...xs];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [copy[i], copy[j]] = [copy[j], copy[i]];
      }
      return copy.slice(0, n);
    },
  };
}

/** A JSON literal written as is into the body (numbers JSON.stringify would change or refuse). */
export class Raw {
  constructor(readonly text: string) {}
  toString(): string {
    return `raw(${this.text})`;
  }
}

/** JSON text of `value`, with every Raw written verbatim. */
export function toJson(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Raw) {
      raws.push(v.text);
      return `\u0001RAW${raws.length - 1}\u0001`;
    }
    return v;
  });
  return text.replace(/"\\u0001RAW(\d+)\\u0001"/g, (_m, i: string) => raws[Number(i)]);
}

export const LONG_STRING = 'A'.repeat(100 * 1024);

export const INJECTIONS: readonly string[] = [
  "'; DROP TABLE accounts; --",
  "' OR 1=1 --",
  '<script>alert(1)</script>',
  '${jndi:ldap://127.0.0.1/a}',
  '{{7*7}}',
  'a\u0000b',
  '\u0000',
  '😀🔥💸'.repeat(5),
  '../../etc/passwd',
  '%00',
  '\ud800',
  'NaN',
  'Infinity',
  '-0',
  '1e400',
  ' 1.00 ',
  '0x10',
  '',
];

/** Numbers a counter or an amount must survive: huge, negative, fractional, -0, past 2^53. */
export const HUGE_NUMBERS: readonly Raw[] = [
  new Raw('1e308'),
  new Raw('1e400'),
  new Raw('-1e308'),
  new Raw('9007199254740993'),
  new Raw('18446744073709551616'),
  new Raw('-1'),
  new Raw('0.5'),
  new Raw('-0'),
  new Raw('1.0000000000000002'),
  new Raw('0'),
];

function deep(depth: number): unknown {
  let v: unknown = {};
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

/** Values of the wrong JSON type for a field of the given OpenAPI type. */
export function wrongTypes(type: string | undefined): unknown[] {
  const all: [string, unknown][] = [
    ['number', 42],
    ['string', 'not-what-you-want'],
    ['object', { $gt: '' }],
    ['object', {}],
    ['array', []],
    ['array', ['x', 1, null]],
    ['null', null],
    ['boolean', true],
    ['boolean', false],
    ['object', deep(200)],
  ];
  return all.filter(([t]) => t !== type).map(([, v]) => v);
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

const STACK_SIGNS = [
  /\n\s+at /,
  /\bat [\w$.<>]+ \(/,
  /\.(ts|js|mjs|cjs):\d+/,
  /\/work\//,
  /node_modules/,
  /\/src\//,
  /QueryFailedError|TypeError|RangeError|ReferenceError|SyntaxError:/,
];

/**
 * Why an error response breaks the contract (`{ error: { code, message, details? } }`, no
 * stack trace), or null when it keeps it.
 */
export function contractViolation(status: number, body: unknown, text: string): string | null {
  if (status < 400) return null;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return `body is not a JSON object: ${text.slice(0, 200)}`;
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys ${JSON.stringify(keys)}`;
  const err = (body as { error: unknown }).error;
  if (err === null || typeof err !== 'object' || Array.isArray(err))
    return 'error is not an object';
  const e = err as Record<string, unknown>;
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'details'].includes(k));
  if (extra.length > 0) return `error has extra keys ${JSON.stringify(extra)}`;
  if (typeof e.code !== 'string' || e.code === '') return 'error.code is not a string';
  if (typeof e.message !== 'string') return 'error.message is not a string';
  if (e.details !== undefined) {
    if (!Array.isArray(e.details)) return 'error.details is not an array';
    for (const d of e.details as unknown[]) {
      if (d === null || typeof d !== 'object') return 'a detail is not an object';
      const dk = Object.keys(d).sort();
      if (dk.join(',') !== 'field,message') return `a detail has keys ${JSON.stringify(dk)}`;
      const { field, message } = d as { field: unknown; message: unknown };
      if (typeof field !== 'string' || typeof message !== 'string')
        return 'a detail field/message is not a string';
    }
  }
  if (status === 400 && e.code === 'validation_failed') {
    const details = e.details as { field: string }[] | undefined;
    if (!details || details.length === 0 || !details.some((d) => d.field.length > 0))
      return '400 validation_failed without details naming a field';
  }
  for (const re of STACK_SIGNS)
    if (re.test(text)) return `looks like a stack trace or path (${re})`;
  return null;
}
