import { randomBytes } from 'node:crypto';
import type { Rng } from './context.js';
import { cap } from './context.js';

/*
 * The hostile inputs: values of the wrong type, huge, negative and fractional numbers (JSON
 * with literals JSON.stringify cannot write: 1e400, -0, 2^53+1), injection-shaped strings,
 * malformed JSON, bad keys, hostile path and query values, and the mutation of one field.
 */

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

/**
 * Hostile values for one field of the given OpenAPI type: the wrong types, then what a field
 * of that type must survive.
 */
export function hostileValues(type: string, rng: Rng): unknown[] {
  const values: unknown[] = [...wrongTypes(type)];
  if (type === 'number' || type === 'integer') {
    values.push(...HUGE_NUMBERS, '1', '1e3', LONG_STRING);
  } else if (type === 'string') {
    values.push(
      ...rng.sample(HUGE_NUMBERS, cap(4)),
      LONG_STRING,
      ...rng.sample(INJECTIONS, cap(6)),
    );
  } else if (type === 'boolean') {
    values.push('true', 1, 0);
  } else if (type === 'array') {
    values.push(
      [LONG_STRING],
      Array.from({ length: 1001 }, (_, i) => `m${i}`),
      [[]],
      [null],
    );
  }
  return values;
}

/** How a hostile value is named in a case: a Raw as written, a long string by its length. */
export const shown = (v: unknown): string | undefined =>
  v instanceof Raw
    ? v.text
    : typeof v === 'string' && v.length > 40
      ? `${v.length} chars`
      : JSON.stringify(v)?.slice(0, 40);

/** What a random mutation puts in a field. */
export const mutationPool = (): unknown[] => [
  ...wrongTypes(undefined),
  ...HUGE_NUMBERS,
  ...INJECTIONS,
  LONG_STRING,
  undefined,
];

/** A copy of `obj` with the field at `path` (`usage.inputTokens`) set, or deleted if undefined. */
export const setPath = (
  obj: Record<string, unknown>,
  path: string,
  value: unknown,
): Record<string, unknown> => {
  const copy = structuredClone(obj);
  const parts = path.split('.');
  let cur: Record<string, unknown> = copy;
  for (const p of parts.slice(0, -1)) {
    if (cur[p] === null || typeof cur[p] !== 'object') cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  const leaf = parts[parts.length - 1];
  if (value === undefined) delete cur[leaf];
  else cur[leaf] = value;
  return copy;
};

/** Authorization headers that are no key at all (fresh random ones each call). */
export const badAuthorizations = (adminKey: string): string[] => [
  '',
  'Bearer',
  'Bearer not-a-key',
  `Basic ${Buffer.from(`admin:${adminKey}`).toString('base64')}`,
  `Bearer ${adminKey}x`,
  `Bearer ck_${randomBytes(24).toString('hex')}`,
  `Bearer sk-${randomBytes(24).toString('hex')}`,
  "Bearer ' OR 1=1 --",
  `Bearer ${'x'.repeat(6000)}`,
  'Bearer %00',
  'Token abc',
];

// A few thousand levels (a 25 KB body) are enough to exhaust a recursive transformer's stack.
export const DEEP_ARRAY = `${'['.repeat(5000)}${']'.repeat(5000)}`;
export const DEEP_OBJECT = `{"name":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;

export const MALFORMED_JSON: readonly string[] = [
  '{',
  '}',
  '{"name":',
  '{"name": "x",}',
  "{'name': 'x'}",
  '{name: "x"}',
  'nul',
  'undefined',
  'NaN',
  '{"a": NaN}',
  '{"a": Infinity}',
  '{"a": 01}',
  '{"a": "\\x41"}',
  '{"a": "\\u12"}',
  '{"a":"b"}garbage',
  '{"a":"b"}{"c":"d"}',
  '\u0000',
  '{"a":"unterminated',
  `[${'1,'.repeat(10)}`,
  '{"a":1}\u0000',
];

export const WRONG_TOP_LEVEL: readonly string[] = [
  '[]',
  '[{}]',
  '[1,2,3]',
  '"a string"',
  '42',
  '-1e400',
  'null',
  'true',
  'false',
];

/** Fields no body documents, each with the body that carries it. */
export const unknownFields = (base: Record<string, unknown>): [string, string][] => [
  ['unknownField', toJson({ ...base, unknownField: 1 })],
  ['isAdmin', toJson({ ...base, isAdmin: true })],
  ['balance', toJson({ ...base, balance: '1000000.00' })],
  ['id', toJson({ ...base, id: '00000000-0000-4000-8000-000000000000' })],
  [`${'k'.repeat(5000)}`, toJson({ ...base, ['k'.repeat(5000)]: 1 })],
];

/** Bodies that try to reach Object.prototype. */
export const prototypeKeys = (base: Record<string, unknown>): [string, string][] => [
  ['__proto__', toJson(base).replace(/^\{/, '{"__proto__":{"isAdmin":true},')],
  ['constructor', toJson({ ...base, constructor: { prototype: { isAdmin: true } } })],
];

/** A random v4-shaped uuid drawn from `rng`. */
export const randomUuid = (rng: Rng): string => {
  const h = Array.from({ length: 32 }, () => rng.int(16).toString(16)).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20)}`;
};

/** Hostile values (already encoded) for the path parameter `name`, whose real value is `real`. */
export const pathSegments = (name: string, real: string, uuid: () => string): string[] => {
  const common = [
    encodeURIComponent("' OR 1=1 --"),
    encodeURIComponent("'; DROP TABLE accounts; --"),
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    `${encodeURIComponent(real)}%00`,
    'a%00b',
    '%',
    '%zz',
    '%E0%A4%A',
    'x'.repeat(4000),
    uuid(),
    '00000000-0000-0000-0000-000000000000',
    'null',
    'undefined',
    '-1',
    '0',
    '1.5',
    '1e308',
    '9'.repeat(40),
    encodeURIComponent('😀'),
    '__proto__',
    'constructor',
    encodeURIComponent('<script>alert(1)</script>'),
    encodeURIComponent('${jndi:ldap://x/a}'),
    encodeURIComponent(real.toUpperCase()),
    `${encodeURIComponent(real)}%20`,
    `${encodeURIComponent(real)}'`,
    encodeURIComponent(`${real},${real}`),
  ];
  if (name === 'period') {
    return [
      ...common,
      '2026-13',
      '2026-00',
      '0000-01',
      '9999-12',
      '2026-1',
      '202611',
      '10000-01',
      '-001-01',
      '2026-11-01',
      '+2026-11',
      '1969-12',
    ];
  }
  return common;
};

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');

/** Hostile values (already encoded) of every documented query parameter, by name. */
export const QUERY_VALUES: Record<string, string[]> = {
  limit: [
    'abc',
    '-1',
    '0',
    '501',
    '1e9',
    '1.5',
    '',
    '%20',
    '1e308',
    'NaN',
    'Infinity',
    '9'.repeat(400),
    '%00',
    '1&limit=2',
    '-0',
  ],
  cursor: [
    'garbage',
    '%00',
    '',
    'x'.repeat(600),
    b64(['x']),
    b64(['x', 'y']),
    b64(['x', 'y', 'z']),
    b64(['x', 'y', 'z', 'w']),
    b64(['2026-01-01T00:00:00Z', 'not-a-uuid']),
    b64(['not-a-date', '00000000-0000-4000-8000-000000000000']),
    b64(['not-a-date', 'x', '00000000-0000-4000-8000-000000000000']),
    b64(['\u0000', '\u0000']),
    b64(["' OR 1=1 --", "'; DROP TABLE accounts; --"]),
    b64(['99999-01-01', '1']),
    b64(['1', '2', '3']),
    b64([1, 2]),
    b64(null),
    b64({}),
    b64('x'),
    encodeURIComponent('["a","b"]'),
  ],
  from: [
    'notadate',
    '2026-02-30',
    '2026-11-01T00:00:00',
    '99999-01-01',
    '0000-01-01',
    '2026-11-01T24:00:00Z',
    '2026-11-01T12:00:00+25:00',
    encodeURIComponent("' OR 1=1 --"),
    '%00',
    '1e308',
    '2026-11-01&from=2026-12-01',
  ],
  to: ['notadate', '1970-01-01', '2026-13-01', '2026-11-01T00:00:00.1234567Z', '%00', '0001-01-01'],
  groupBy: ['x', '', 'MODEL', 'model%00', encodeURIComponent("' OR 1=1 --"), 'day&groupBy=model'],
  n: ['0', '1.5', '-1', '1e9', 'abc', '100001', '9007199254740993', '', '%00', 'NaN'],
  model: [
    encodeURIComponent("' OR 1=1 --"),
    '%00',
    'x'.repeat(3000),
    encodeURIComponent('😀'),
    encodeURIComponent('<script>'),
  ],
  tokenId: [
    'not-a-uuid',
    encodeURIComponent("' OR 1=1 --"),
    '%00',
    '00000000-0000-0000-0000-000000000000',
    'x'.repeat(3000),
  ],
  outcome: ['x', 'CHARGED', 'charged%00', 'rejected', ''],
  size: ['x', '%00', '99999x99999', encodeURIComponent("' OR 1=1 --"), 'x'.repeat(3000)],
  quality: ['x', '%00', 'HIGH', encodeURIComponent("' OR 1=1 --")],
  group: ['nope', '%00', encodeURIComponent("' OR 1=1 --"), 'x'.repeat(3000), '__proto__'],
  status: [
    'x',
    '',
    'NEEDS_REVIEW',
    'needs_review%00',
    encodeURIComponent("' OR 1=1 --"),
    'paid&status=x',
  ],
  credit: ['0', '0.99', '10000.01', '1.001', '-5', '1e3', 'abc', '', '%00', 'NaN'],
  actor: ['%00', encodeURIComponent("' OR 1=1 --"), 'x'.repeat(3000), 'al ice', ''],
  target: ['%00', encodeURIComponent("group:' OR 1=1 --"), 'x'.repeat(3000), 'a%0Ab'],
};

/** Valid values of the query parameters a report needs to answer at all. */
export const BASE_QUERY: Record<string, string> = {
  model: 'gpt-image-2',
  size: '1024x1024',
  quality: 'high',
};

/** Parameters no list documents, added to a valid query. */
export const EXTRA_QUERIES: readonly string[] = [
  'foo=bar',
  '__proto__[x]=1',
  'constructor=1',
  'limit[a]=1',
];

/** Query strings for operations that document none. */
export const JUNK_QUERIES: readonly string[] = [
  'foo=bar',
  '%00=%00',
  'limit=abc&cursor=%00',
  `q=${'x'.repeat(3000)}`,
  '%',
];
