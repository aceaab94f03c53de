import { cap, type FuzzContext, type Rng } from './context.js';
import {
  BASE_QUERY,
  badAuthorizations,
  DEEP_ARRAY,
  DEEP_OBJECT,
  EXTRA_QUERIES,
  HUGE_NUMBERS,
  hostileValues,
  INJECTIONS,
  JUNK_QUERIES,
  MALFORMED_JSON,
  mutationPool,
  pathSegments,
  prototypeKeys,
  QUERY_VALUES,
  randomUuid,
  setPath,
  shown,
  toJson,
  unknownFields,
  WRONG_TOP_LEVEL,
  wrongTypes,
} from './generators.js';
import type { FuzzRequest } from './runner.js';
import { HAS_BODY, type OpenApiWalker, type Operation } from './walker.js';

/*
 * The cases of each property of the fuzz spec: the hostile inputs of generators.ts put on
 * every operation the walker read. Built in order, so a seed always draws the same cases.
 */

/** A missing, malformed, unknown or other role's key on every operation that takes one. */
export function authCases(api: OpenApiWalker, ctx: FuzzContext, rng: Rng): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  for (const op of api.ops.filter((o) => o.role !== 'public')) {
    const body = HAS_BODY.includes(op.method) && op.body ? toJson(api.validBody(op)) : undefined;
    cases.push({ what: 'no key', op, url: api.urlOf(op), body, auth: null, expect: [401] });
    for (const a of rng.sample(badAuthorizations(ctx.t.adminKey), cap(4)))
      cases.push({ what: 'bad key', op, url: api.urlOf(op), body, auth: a, expect: [401] });
    for (const k of ctx.wrongKeysFor(op.role)) {
      const expected = k === ctx.tokenKey ? [401] : [403];
      cases.push({
        what: 'wrong role',
        op,
        url: api.urlOf(op),
        body,
        auth: `Bearer ${k}`,
        expect: expected,
      });
    }
  }
  return cases;
}

/** Malformed JSON, wrong top-level types and odd content types on every body. */
export function bodyFormatCases(api: OpenApiWalker): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  for (const op of api.bodyOps()) {
    const url = api.urlOf(op);
    for (const b of MALFORMED_JSON)
      cases.push({ what: 'malformed JSON', op, url, body: b, expect: [400] });
    for (const b of WRONG_TOP_LEVEL)
      cases.push({ what: 'top-level type', op, url, body: b, expect: [400] });
    cases.push({ what: 'byte order mark', op, url, body: `\ufeff${toJson(api.validBody(op))}` });
    cases.push({ what: 'deeply nested array', op, url, body: DEEP_ARRAY });
    cases.push({ what: 'deeply nested object', op, url, body: DEEP_OBJECT });
    const valid = toJson(api.validBody(op));
    cases.push({
      what: 'utf-16 charset',
      op,
      url,
      body: valid,
      contentType: 'application/json; charset=utf-16',
      expect: [400, 415],
    });
    cases.push({
      what: 'gzip that is not',
      op,
      url,
      body: valid,
      headers: { 'Content-Encoding': 'gzip' },
      expect: [400, 415],
    });
    cases.push({
      what: 'unknown encoding',
      op,
      url,
      body: valid,
      headers: { 'Content-Encoding': 'br, x-fuzz' },
      expect: [400, 415],
    });
    cases.push({
      what: 'invalid UTF-8',
      op,
      url,
      body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
    });
    if (op.role !== 'public' && !op.method.startsWith('patch')) {
      // Not JSON at all: the body is not read, so required fields are missing.
      cases.push({
        what: 'text/plain',
        op,
        url,
        body: valid,
        contentType: 'text/plain',
        expect: [400, 415],
      });
      cases.push({
        what: 'form body',
        op,
        url,
        body: 'name=x&ratio=1',
        contentType: 'application/x-www-form-urlencoded',
        expect: [400, 415],
      });
    }
  }
  return cases;
}

/** Every field of every body, one at a time, set to each hostile value of its type. */
export function fieldCases(api: OpenApiWalker, rng: Rng): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  for (const op of api.bodyOps().filter((o) => o.role !== 'public')) {
    const base = api.validBody(op);
    for (const f of api.fieldsOf(op.body ?? undefined, base)) {
      for (const v of hostileValues(f.type, rng)) {
        const body = setPath(api.validBody(op), f.path, v);
        cases.push({
          what: `${f.path}=${shown(v)}`,
          op,
          url: api.urlOf(op),
          body: toJson(body),
          field: f.path,
        });
      }
    }
  }
  return cases;
}

/** Unknown fields, prototype keys and missing required fields on every body. */
export function unknownAndMissingCases(api: OpenApiWalker): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  for (const op of api.bodyOps().filter((o) => o.role !== 'public')) {
    const url = api.urlOf(op);
    const base = api.validBody(op);
    for (const [field, body] of unknownFields(base)) {
      // Only a 400 that names the field: an unknown field must never be accepted and ignored.
      cases.push({ what: `unknown ${field.slice(0, 20)}`, op, url, body, expect: [400], field });
    }
    // class-transformer drops these two keys before the whitelist sees them: the request may
    // pass, but nothing may reach Object.prototype (checked in the spec, in this very process).
    for (const [field, body] of prototypeKeys(base))
      cases.push({ what: `key ${field}`, op, url, body, field });
    const nested = api
      .fieldsOf(op.body ?? undefined, base)
      .filter((f) => f.type === 'object' && !f.path.includes('.'));
    for (const f of nested) {
      const body = setPath(base, `${f.path}.unknownNested`, 1);
      cases.push({
        what: `unknown ${f.path}.unknownNested`,
        op,
        url,
        body: toJson(body),
        expect: [400, 200],
        field: f.path,
      });
    }
    for (const req of api.resolve(op.body ?? undefined)?.required ?? []) {
      const body = setPath(base, req, undefined);
      cases.push({
        what: `missing ${req}`,
        op,
        url,
        body: toJson(body),
        expect: [400],
        field: req,
      });
    }
    const ev = op.path === '/v1/usage-events/batch' ? api.schemas.UsageEventDto : undefined;
    for (const req of ev?.required ?? []) {
      const body = setPath(base, `events.0.${req}`, undefined);
      cases.push({
        what: `missing events.0.${req}`,
        op,
        url,
        body: toJson(body),
        expect: [200],
        field: `events.0.${req}`,
      });
    }
  }
  return cases;
}

/** Seeded random bodies with several fields mutated at once (and now and then an extra one). */
export function randomMutationCases(api: OpenApiWalker, rng: Rng): FuzzRequest[] {
  const pool = mutationPool();
  const targets = api.bodyOps().filter((o) => o.role !== 'public');
  const cases: FuzzRequest[] = [];
  for (let i = 0; i < cap(300); i++) {
    const op = rng.pick(targets);
    let body = api.validBody(op);
    const fields = api.fieldsOf(op.body ?? undefined, body);
    const n = 2 + rng.int(3);
    for (const f of rng.sample(fields, n)) body = setPath(body, f.path, rng.pick(pool));
    if (rng.next() < 0.2) body = { ...body, [`x${rng.int(1000)}`]: rng.pick(pool) ?? null };
    cases.push({ what: `random #${i}`, op, url: api.urlOf(op), body: toJson(body) });
  }
  return cases;
}

/** Hostile values of every path parameter of every operation, and a raw `../` on a few. */
export function pathParamCases(api: OpenApiWalker, rng: Rng): FuzzRequest[] {
  const segments = (op: Operation, name: string): string[] =>
    pathSegments(name, api.realParam(op, name), () => randomUuid(rng));
  const cases: FuzzRequest[] = [];
  for (const op of api.ops.filter((o) => o.pathParams.length > 0)) {
    const body =
      HAS_BODY.includes(op.method) && op.body ? () => toJson(api.validBody(op)) : () => undefined;
    for (const p of op.pathParams) {
      for (const seg of segments(op, p)) {
        const url = api.urlOf(op, { [p]: seg });
        cases.push({ what: `{${p}}=${seg.slice(0, 30)}`, op, url, body: body() });
      }
    }
  }
  // The raw traversal: routes elsewhere (or nowhere), never a 5xx.
  for (const op of api.ops.filter((o) => o.pathParams.length > 0).slice(0, cap(10))) {
    cases.push({ what: 'raw ../', op, url: api.urlOf(op, { [op.pathParams[0]]: '../../etc' }) });
  }
  return cases;
}

/** Hostile query values on every list and report, and junk query strings everywhere else. */
export function queryCases(api: OpenApiWalker): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  for (const op of api.ops.filter((o) => o.method === 'get' && o.queryParams.length > 0)) {
    const required = op.queryParams.filter((q) => q.required).map((q) => q.name);
    const base = (skip: string): string[] =>
      op.queryParams
        .filter((q) => q.name !== skip && (required.includes(q.name) || q.name in BASE_QUERY))
        .map((q) => `${q.name}=${encodeURIComponent(BASE_QUERY[q.name] ?? 'x')}`);
    for (const q of op.queryParams) {
      const vs = QUERY_VALUES[q.name];
      if (!vs) throw new Error(`no hostile values for ?${q.name} of ${op.path}: add some`);
      for (const v of vs) {
        const query = [...base(q.name), `${q.name}=${v}`].join('&');
        cases.push({ what: `?${q.name}=${v.slice(0, 30)}`, op, url: api.urlOf(op, {}, query) });
      }
    }
    for (const extra of EXTRA_QUERIES) {
      cases.push({ what: `?${extra}`, op, url: api.urlOf(op, {}, [...base(''), extra].join('&')) });
    }
    for (const r of required) {
      cases.push({
        what: `missing ?${r}`,
        op,
        url: api.urlOf(op, {}, base(r).join('&')),
        expect: [400],
        field: r,
      });
    }
  }
  // Junk query strings on every other operation too (health, /v1/me, bodies): ignored or
  // refused, never a fault. Deletes and key rotation are left out: they would succeed.
  for (const op of api.ops.filter(
    (o) => o.queryParams.length === 0 && o.method !== 'delete' && !o.path.endsWith('/console-key'),
  )) {
    const body =
      HAS_BODY.includes(op.method) && op.body ? () => toJson(api.validBody(op)) : () => undefined;
    for (const junk of JUNK_QUERIES) {
      cases.push({
        what: `junk ?${junk.slice(0, 20)}`,
        op,
        url: api.urlOf(op, {}, junk),
        body: body(),
      });
    }
  }
  return cases;
}

/** A body over 2 MB on every operation that takes one. */
export function oversizeCases(api: OpenApiWalker): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  for (const op of api.bodyOps()) {
    const huge = toJson({ ...api.validBody(op), name: 'A'.repeat(2 * 1024 * 1024 + 10) });
    cases.push({ what: 'over 2 MB', op, url: api.urlOf(op), body: huge, expect: [413] });
  }
  return cases;
}

/** A batch of 1,001 events, of none, and of 1,000 events each wrong in its own way. */
export function batchLimitCases(api: OpenApiWalker, batch: Operation, rng: Rng): FuzzRequest[] {
  const cases: FuzzRequest[] = [];
  const ev = () => (api.validBody(batch).events as unknown[])[0];
  cases.push({
    what: '1001 events',
    op: batch,
    url: api.urlOf(batch),
    body: toJson({ events: Array.from({ length: 1001 }, ev) }),
    expect: [400],
    field: 'events',
  });
  cases.push({
    what: '0 events',
    op: batch,
    url: api.urlOf(batch),
    body: toJson({ events: [] }),
    expect: [400],
    field: 'events',
  });
  // 1,000 events each wrong in its own way: one rejected result each, nothing booked.
  const pool: unknown[] = [null, 1, 'x', [], {}, ...wrongTypes(undefined)];
  const bad = Array.from({ length: 1000 }, (_, i) => {
    if (i % 10 === 0) return rng.pick(pool);
    const e = ev() as Record<string, unknown>;
    const f = rng.pick(['statusCode', 'tokenId', 'model', 'requestId', 'images', 'usage']);
    return {
      ...e,
      [f]: rng.pick([
        ...HUGE_NUMBERS.slice(0, 3),
        ...INJECTIONS.slice(0, 4),
        null,
        -1,
        0.5,
        { a: 1 },
      ]),
    };
  });
  cases.push({
    what: '1000 bad events',
    op: batch,
    url: api.urlOf(batch),
    body: toJson({ events: bad }),
    expect: [200],
  });
  return cases;
}
