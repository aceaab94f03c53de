import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type { Response, Test } from 'supertest';
import {
  contractViolation,
  diffFingerprints,
  Fingerprint,
  fingerprint,
  HUGE_NUMBERS,
  INJECTIONS,
  LONG_STRING,
  prng,
  Raw,
  rowCounts,
  tablesOf,
  toJson,
  wrongTypes,
} from './helpers/fuzz.js';
import {
  adminHeaders,
  gatewayHeaders,
  createAccount,
  createPromotion,
  createRedemptionBatch,
  createTopUp,
  deliverWebhook,
  paidEvent,
  postAdjustment,
  postEvent,
} from './helpers/api.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

/*
 * Issue 6, item 3: fuzzed input on every operation the OpenAPI spec documents. Every response
 * must be below 500 and, when an error, exactly the contract's body; a rejected request must
 * write nothing. Writes are checked per request: a digest of every row of every table is
 * taken after each request, so the request that wrote is the one named.
 *
 * Reproducible: FUZZ_SEED picks the same cases every run (default below); FUZZ_BUDGET caps
 * the requests of each sampled category.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261106);
const BUDGET = Number(process.env.FUZZ_BUDGET ?? 1);
/** Kept to sign the webhook that puts a top-up in review during setup. */
const WEBHOOK_SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

/** The tables the contract's data lives in; all of them must be fingerprinted. */
const KNOWN_TABLES = [
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
const REFUSAL_COUNTERS = ['console_throttle', 'redemption_attempts'];

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Role = 'admin' | 'gateway' | 'customer' | 'any' | 'public';

interface SchemaObject {
  type?: string;
  $ref?: string;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  items?: SchemaObject;
  enum?: unknown[];
  nullable?: boolean;
}

interface Operation {
  method: Method;
  /** The template as documented: `/v1/admin/groups/{name}`. */
  path: string;
  pathParams: string[];
  queryParams: { name: string; required: boolean; schema: SchemaObject }[];
  body: SchemaObject | null;
  role: Role;
}

interface FuzzRequest {
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

interface Outcome {
  status: number;
  wrote: string[];
}

const roleOf = (path: string): Role => {
  if (path.startsWith('/v1/admin/')) return 'admin';
  if (path.startsWith('/v1/me')) return 'customer';
  if (path.startsWith('/v1/gateway/') || path.startsWith('/v1/usage-events')) return 'gateway';
  // The console's sign-up, sign-in and invite routes take no key (a session cookie or none).
  if (path.startsWith('/v1/console/')) return 'public';
  if (path.startsWith('/v1/stripe/') || !path.startsWith('/v1/')) return 'public';
  return 'any';
};

const HAS_BODY: Method[] = ['post', 'put', 'patch'];

describe('Fuzzed input on every documented operation', () => {
  let stub: StripeStub;
  let t: TestApp;
  let spec: { paths: Record<string, Record<string, Record<string, unknown>>> };
  let schemas: Record<string, SchemaObject>;
  let ops: Operation[];
  let tables: string[];
  let last: Fingerprint;
  let countsBefore: Record<string, number>;
  /** Tables that some accepted (2xx) request was allowed to change. */
  const changedByAccepted = new Set<string>();
  const accepted: string[] = [];
  const statuses = new Map<number, number>();
  /** Operations that got at least one fuzzed request. */
  const touched = new Set<string>();
  let total = 0;
  let seq = 0;
  const uniq = (): string => `${Date.now().toString(36)}${(seq++).toString(36)}`;

  const ctx = {
    accountId: '',
    consoleKey: '',
    otherAccountId: '',
    tokenId: '',
    spareTokenId: '',
    spareGroup: '',
    sparePromotionId: '',
    tokenKey: '',
    group: '',
    model: '',
    promotionId: '',
    topUpId: '',
    holdRequestId: '',
    reviewRequestId: '',
    reviewTopUpId: '',
    spareBatchId: '',
    /** Unredeemed codes: each valid redemption body takes one (a used code is invalid_code). */
    codes: [] as string[],
  };

  const keyFor = (role: Role): string | null => {
    switch (role) {
      case 'admin':
        return t.adminKey;
      case 'gateway':
        return t.gatewayKey;
      case 'customer':
      case 'any':
        return ctx.consoleKey;
      case 'public':
        return null;
    }
  };

  const wrongKeysFor = (role: Role): string[] => {
    switch (role) {
      case 'admin':
        return [t.gatewayKey, ctx.consoleKey, ctx.tokenKey];
      case 'gateway':
        return [t.adminKey, ctx.consoleKey, ctx.tokenKey];
      case 'customer':
        return [t.adminKey, t.gatewayKey, ctx.tokenKey];
      case 'any':
      case 'public':
        return [];
    }
  };

  /**
   * Real values for path parameters: resources created in setup. Deleting and key rotation use
   * spare resources: a variant of a real id that the service accepts (an upper-case uuid) may
   * succeed, and must not take away what the other cases need.
   */
  const realParam = (op: Operation, name: string): string => {
    const spare = op.method === 'delete' || op.path.endsWith('/console-key');
    switch (name) {
      case 'accountId':
        return ctx.accountId;
      case 'id':
        if (op.path.startsWith('/v1/admin/accounts'))
          return spare ? ctx.otherAccountId : ctx.accountId;
        if (op.path.startsWith('/v1/me/tokens')) return spare ? ctx.spareTokenId : ctx.tokenId;
        if (op.path.startsWith('/v1/admin/promotions'))
          return spare ? ctx.sparePromotionId : ctx.promotionId;
        if (op.path.startsWith('/v1/me/top-ups')) return ctx.topUpId;
        if (op.path.startsWith('/v1/admin/top-ups/')) return ctx.reviewTopUpId;
        break;
      case 'batchId':
        return ctx.spareBatchId;
      case 'name':
        return spare ? ctx.spareGroup : ctx.group;
      case 'model':
        return ctx.model;
      case 'period':
        return new Date().toISOString().slice(0, 7);
      case 'requestId':
        return op.path.includes('/holds/') ? ctx.holdRequestId : ctx.reviewRequestId;
    }
    throw new Error(`no real value for {${name}} of ${op.method} ${op.path}: add one to realParam`);
  };

  const urlOf = (op: Operation, params: Record<string, string> = {}, query = ''): string => {
    let url = op.path;
    for (const p of op.pathParams) {
      url = url.replace(`{${p}}`, params[p] ?? encodeURIComponent(realParam(op, p)));
    }
    return query ? `${url}?${query}` : url;
  };

  const future = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString();

  /**
   * A valid body for each operation that takes one: mutations change one thing in it, so a 400
   * must name that thing. Fresh unique values each call, so an accepted body never turns the
   * next one into a conflict.
   */
  const validBody = (op: Operation): Record<string, unknown> => {
    const event = (): Record<string, unknown> => ({
      requestId: `fz-${uniq()}`,
      tokenId: ctx.tokenId,
      model: 'gpt-image-2',
      statusCode: 200,
      errorCode: 'none',
      moderated: false,
      timedOut: false,
      usage: {
        inputTokens: 20,
        outputTokens: 100,
        inputTokensDetails: { textTokens: 10, imageTokens: 10, cachedTokens: 0 },
        outputTokensDetails: { textTokens: 0, imageTokens: 100 },
      },
      images: 1,
      partialImages: 0,
      size: '1024x1024',
      quality: 'high',
      occurredAt: new Date().toISOString(),
    });
    const key = `${op.method} ${op.path}`;
    switch (key) {
      case 'post /v1/admin/accounts':
        return { name: `Fuzz ${uniq()}`, email: 'fuzz@example.test' };
      case 'patch /v1/admin/accounts/{id}':
        return { name: 'Fuzz customer', status: 'active' };
      case 'post /v1/admin/accounts/{id}/adjustments':
        return { amount: '0.01', reason: 'fuzz' };
      case 'post /v1/admin/groups':
        return {
          name: `fz_${uniq()}`,
          ratio: '1.5',
          description: 'fuzz',
          selectable: true,
          isDefault: false,
        };
      case 'patch /v1/admin/groups/{name}':
        return { ratio: '1.25', description: 'fuzz', selectable: true };
      case 'put /v1/admin/models/{model}':
        return {
          mode: 'per_image',
          perImage: '0.04',
          referencePrices: [{ size: '1024x1024', quality: 'high', price: '0.04' }],
        };
      case 'post /v1/admin/accounts/{accountId}/tokens':
      case 'post /v1/me/tokens':
        return {
          name: `fz ${uniq()}`,
          group: 'default',
          expiresAt: future(30),
          spendLimit: '50.00',
          allowedModels: ['gpt-image-2'],
        };
      case 'patch /v1/me/tokens/{id}':
        return {
          name: 'fuzzed',
          group: 'default',
          expiresAt: null,
          spendLimit: null,
          allowedModels: null,
        };
      case 'post /v1/gateway/authorize':
        return { key: ctx.tokenKey, model: 'gpt-image-2' };
      case 'post /v1/usage-events':
        return event();
      case 'post /v1/usage-events/batch':
        return { events: [event()] };
      case 'post /v1/admin/promotions':
        return {
          name: `fz ${uniq()}`,
          rate: '0.99',
          startsAt: future(1),
          endsAt: future(2),
          minCredit: '5000.00',
          active: false,
        };
      case 'patch /v1/admin/promotions/{id}':
        return {
          name: 'fuzz promo',
          rate: '0.99',
          startsAt: null,
          endsAt: null,
          minCredit: '5000.00',
          active: false,
        };
      case 'post /v1/me/top-ups':
        return { credit: '1.00' };
      case 'post /v1/admin/top-ups/{id}/resolve':
        return { action: 'dismiss', note: 'fuzz' };
      case 'post /v1/admin/redemption-codes':
        return { name: `fz ${uniq()}`, credit: '0.01', count: 1, expiresAt: future(30) };
      case 'post /v1/me/redemptions':
        return { code: ctx.codes.pop() ?? 'AAAA-AAAA-AAAA-AAAA-AAAA' };
      case 'post /v1/admin/accounts/{id}/invite':
        return { email: `fz-${uniq()}@example.test` };
      default:
        // An operation documented after this test was written: a body built from its schema.
        return fromSchema(op.body);
    }
  };

  const resolve = (s: SchemaObject | undefined): SchemaObject | undefined => {
    if (!s?.$ref) return s;
    return schemas[s.$ref.replace('#/components/schemas/', '')];
  };

  function fromSchema(s: SchemaObject | null | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const r = resolve(s ?? undefined);
    for (const [k, p] of Object.entries(r?.properties ?? {})) {
      const ps = resolve(p);
      if (ps?.type === 'number' || ps?.type === 'integer') out[k] = 1;
      else if (ps?.type === 'boolean') out[k] = true;
      else if (ps?.type === 'string') out[k] = ps.enum ? ps.enum[0] : 'x';
    }
    return out;
  }

  /** Every field of a body schema, nested ones as `usage.inputTokens`, array items as `events.0.model`. */
  const fieldsOf = (
    s: SchemaObject | undefined,
    base: unknown,
    prefix = '',
  ): { path: string; type: string }[] => {
    const r = resolve(s);
    const out: { path: string; type: string }[] = [];
    for (const [k, p] of Object.entries(r?.properties ?? {})) {
      const ps = resolve(p);
      const path = prefix ? `${prefix}.${k}` : k;
      const type = ps?.type ?? (ps?.properties ? 'object' : 'string');
      out.push({ path, type });
      const child = (base as Record<string, unknown> | undefined)?.[k];
      if (ps?.properties && child && typeof child === 'object')
        out.push(...fieldsOf(ps, child, path));
      if (
        type === 'array' &&
        Array.isArray(child) &&
        child.length > 0 &&
        resolve(ps?.items)?.properties
      ) {
        out.push(...fieldsOf(ps?.items, child[0], `${path}.0`));
      }
    }
    return out;
  };

  const setPath = (
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

  const open = (method: Method, url: string): Test => {
    switch (method) {
      case 'get':
        return t.http.get(url);
      case 'post':
        return t.http.post(url);
      case 'put':
        return t.http.put(url);
      case 'patch':
        return t.http.patch(url);
      case 'delete':
        return t.http.delete(url);
    }
  };

  const describeReq = (r: FuzzRequest): string => {
    const body =
      r.body === undefined
        ? ''
        : ` body=${(typeof r.body === 'string' ? r.body : `<${r.body.length} bytes>`).slice(0, 160)}`;
    return `[${r.what}] ${r.op.method.toUpperCase()} ${r.url.slice(0, 200)}${body}`;
  };

  /** Sends one case and checks everything every response owes the contract. */
  const send = async (r: FuzzRequest, failures: string[]): Promise<Outcome> => {
    let req = open(r.op.method, r.url);
    const own = keyFor(r.op.role);
    const auth = r.auth === undefined ? (own === null ? null : `Bearer ${own}`) : r.auth;
    if (auth !== null) req = req.set('Authorization', auth);
    for (const [k, v] of Object.entries(r.headers ?? {})) req = req.set(k, v);
    if (r.op.path.endsWith('/adjustments') && !(r.headers && 'Idempotency-Key' in r.headers)) {
      req = req.set('Idempotency-Key', `fz-${uniq()}`);
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
    total++;
    touched.add(`${r.op.method} ${r.op.path}`);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
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
    const now = await fingerprint(t.sql, tables);
    // Refused sign-ins are counted by design (the throttle): that table may change on a 401.
    const wrote = diffFingerprints(last, now).filter((x) => !REFUSAL_COUNTERS.includes(x));
    const mayWrite = r.op.method !== 'get' && res.status >= 200 && res.status < 300 && batchWrites;
    if (wrote.length > 0 && !mayWrite) problems.push(`wrote to ${wrote.join(', ')}`);
    if (mayWrite) {
      accepted.push(`${describeReq(r).slice(0, 200)} → ${res.status}`);
      wrote.forEach((x) => changedByAccepted.add(x));
    }
    last = now;

    if (problems.length > 0) {
      failures.push(
        `${describeReq(r)} → ${res.status} ${text.slice(0, 300)} :: ${problems.join('; ')}`,
      );
    }
    return { status: res.status, wrote };
  };

  const runAll = async (cases: FuzzRequest[]): Promise<string[]> => {
    const failures: string[] = [];
    for (const c of cases) await send(c, failures);
    return failures;
  };

  const report = (failures: string[]): string => {
    if (failures.length === 0) return '';
    if (process.env.FUZZ_REPORT)
      appendFileSync(process.env.FUZZ_REPORT, `${failures.join('\n')}\n`);
    return `${failures.length} failing case(s) (FUZZ_SEED=${SEED}):\n${failures.slice(0, 30).join('\n')}`;
  };

  const bodyOps = (): Operation[] => ops.filter((o) => o.body !== null);
  const seeded = (salt: number) => prng(SEED + salt);
  const cap = (n: number): number => Math.max(1, Math.round(n * BUDGET));

  beforeAll(async () => {
    stub = await startStripeStub();
    t = await createTestApp({
      STRIPE_SECRET_KEY: 'sk_test_stub_fuzz',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_BASE: stub.url,
      PUBLIC_BASE_URL: 'https://console.example.test',
      // Thousands of keyless console requests from one address: the per-address limit (tested
      // on its own) would answer them 429 before their bodies are checked.
      UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE: '1000000',
      // The fuzz sends thousands of requests a minute with one console key.
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    spec = (await t.http.get('/docs-json').expect(200)).body;
    schemas = (spec as unknown as { components: { schemas: Record<string, SchemaObject> } })
      .components.schemas;
    ops = [];
    for (const [path, byMethod] of Object.entries(spec.paths)) {
      for (const [method, raw] of Object.entries(byMethod)) {
        const params = (raw.parameters ?? []) as {
          name: string;
          in: string;
          required?: boolean;
          schema: SchemaObject;
        }[];
        const content = (
          raw.requestBody as { content?: Record<string, { schema: SchemaObject }> } | undefined
        )?.content;
        ops.push({
          method: method as Method,
          path,
          pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
          queryParams: params
            .filter((p) => p.in === 'query')
            .map((p) => ({ name: p.name, required: p.required === true, schema: p.schema })),
          body:
            content?.['application/json']?.schema ??
            (path === '/v1/stripe/webhook' ? { type: 'object' } : null),
          role: roleOf(path),
        });
      }
    }

    // Resources for the path parameters, created through the API.
    const acc = await createAccount(t, 'Fuzz customer');
    ctx.accountId = acc.id;
    ctx.consoleKey = acc.consoleKey;
    ctx.otherAccountId = (await createAccount(t, 'Fuzz other')).id;
    const tok = await t.http
      .post('/v1/me/tokens')
      .set(...bearer(ctx.consoleKey))
      .send({ name: 'fuzz' })
      .expect(201);
    ctx.tokenId = tok.body.id;
    ctx.tokenKey = tok.body.key;
    const spareTok = await t.http
      .post('/v1/me/tokens')
      .set(...bearer(ctx.consoleKey))
      .send({ name: 'spare' })
      .expect(201);
    ctx.spareTokenId = spareTok.body.id;
    ctx.group = `fuzzGroup_${randomBytes(3).toString('hex')}`;
    ctx.spareGroup = `${ctx.group}_spare`;
    for (const name of [ctx.group, ctx.spareGroup]) {
      await t.http
        .post('/v1/admin/groups')
        .set(...adminHeaders(t))
        .send({ name, ratio: '1.5' })
        .expect(201);
    }
    ctx.model = 'fuzz-model';
    await t.http
      .put(`/v1/admin/models/${ctx.model}`)
      .set(...adminHeaders(t))
      .send({ mode: 'per_image', perImage: '0.04' })
      .expect((r) => expect([200, 201]).toContain(r.status));
    ctx.promotionId = (
      await createPromotion(t, { name: 'fuzz promo', rate: '0.99', active: false })
    ).id;
    ctx.sparePromotionId = (
      await createPromotion(t, { name: 'spare promo', rate: '0.99', active: false })
    ).id;
    await postAdjustment(t, ctx.accountId, `fz-setup-${randomBytes(4).toString('hex')}`, {
      amount: '100.00',
      reason: 'fuzz setup',
    }).expect(201);
    const topUp = await t.http
      .post('/v1/me/top-ups')
      .set(...bearer(ctx.consoleKey))
      .send({ credit: '10.00' })
      .expect(201);
    ctx.topUpId = topUp.body.id;
    // A top-up Stripe reported paid at the wrong amount: in the admins' review queue.
    const inReview = await createTopUp(
      t,
      stub,
      { id: ctx.accountId, consoleKey: ctx.consoleKey },
      '20.00',
    );
    await deliverWebhook(t, paidEvent(inReview, { amount_total: 1 }), WEBHOOK_SECRET)
      .expect(200)
      .expect((r) => expect(r.body.outcome).toBe('needs_review'));
    ctx.reviewTopUpId = inReview.topUpId;
    ctx.codes = (await createRedemptionBatch(t, { name: 'fuzz codes', credit: '0.01', count: 200 }))
      .codes as string[];
    ctx.spareBatchId = (
      await createRedemptionBatch(t, { name: 'spare batch', credit: '0.01', count: 2 })
    ).batchId as string;
    ctx.holdRequestId = 'fz-hold-1';
    await t.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(t))
      .send({ key: ctx.tokenKey, model: 'gpt-image-2-vip', requestId: ctx.holdRequestId })
      .expect(200)
      .expect((r) => expect(r.body.hold).not.toBeNull());
    // Priced far above the seeded reviewAbove (5.00): stored for review, not booked.
    ctx.reviewRequestId = 'fz-review-1';
    await postEvent(t, {
      requestId: ctx.reviewRequestId,
      tokenId: ctx.tokenId,
      model: 'gpt-image-2',
      statusCode: 200,
      usage: { inputTokens: 100, outputTokens: 1_000_000 },
    })
      .expect(201)
      .expect((r) => expect(r.body.outcome).toBe('review'));
    await postEvent(t, {
      requestId: 'fz-setup-1',
      tokenId: ctx.tokenId,
      model: 'gpt-image-2-vip',
      statusCode: 200,
      images: 2,
    }).expect(201);
    await postEvent(t, {
      requestId: 'fz-setup-2',
      tokenId: ctx.tokenId,
      model: 'gpt-image-2-vip',
      statusCode: 500,
    }).expect(201);

    tables = await tablesOf(t.sql);
    last = await fingerprint(t.sql, tables);
  });

  afterAll(async () => {
    if (process.env.FUZZ_VERBOSE) {
      console.info(
        `fuzz: ${total} requests; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
          `${accepted.length} accepted mutations:\n${accepted.join('\n')}`,
      );
    }
    await t?.close();
    await stub?.close();
  });

  it('reads every operation from /docs-json and knows the role, path values and a valid body of each', async () => {
    expect(ops.length).toBeGreaterThanOrEqual(40);
    for (const known of KNOWN_TABLES) expect(tables).toContain(known);
    countsBefore = await rowCounts(t.sql, tables);
    // Every valid body is accepted as is: a mutation of it then tests exactly what it changed.
    const failures: string[] = [];
    for (const op of bodyOps().filter((o) => o.role !== 'public')) {
      const body = validBody(op);
      const { status } = await send(
        { what: 'valid body', op, url: urlOf(op), body: toJson(body) },
        failures,
      );
      if (status < 200 || status >= 300)
        failures.push(`valid body of ${op.method} ${op.path} got ${status}`);
    }
    expect(report(failures)).toBe('');
  });

  it('refuses a missing, malformed, unknown or other role key on every operation with 401/403 and writes nothing', async () => {
    const rng = seeded(1);
    const bad = (): string[] => [
      '',
      'Bearer',
      'Bearer not-a-key',
      `Basic ${Buffer.from(`admin:${t.adminKey}`).toString('base64')}`,
      `Bearer ${t.adminKey}x`,
      `Bearer ck_${randomBytes(24).toString('hex')}`,
      `Bearer sk-${randomBytes(24).toString('hex')}`,
      "Bearer ' OR 1=1 --",
      `Bearer ${'x'.repeat(6000)}`,
      'Bearer %00',
      'Token abc',
    ];
    const cases: FuzzRequest[] = [];
    for (const op of ops.filter((o) => o.role !== 'public')) {
      const body = HAS_BODY.includes(op.method) && op.body ? toJson(validBody(op)) : undefined;
      cases.push({ what: 'no key', op, url: urlOf(op), body, auth: null, expect: [401] });
      for (const a of rng.sample(bad(), cap(4)))
        cases.push({ what: 'bad key', op, url: urlOf(op), body, auth: a, expect: [401] });
      for (const k of wrongKeysFor(op.role)) {
        const expected = k === ctx.tokenKey ? [401] : [403];
        cases.push({
          what: 'wrong role',
          op,
          url: urlOf(op),
          body,
          auth: `Bearer ${k}`,
          expect: expected,
        });
      }
    }
    expect(report(await runAll(cases))).toBe('');
  });

  it('answers malformed JSON, wrong top-level types and odd content types on every body with a 4xx', async () => {
    // A few thousand levels (a 25 KB body) are enough to exhaust a recursive transformer's stack.
    const deepArray = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const deepObject = `{"name":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    const malformed = [
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
    const wrongTop = [
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
    const cases: FuzzRequest[] = [];
    for (const op of bodyOps()) {
      const url = urlOf(op);
      for (const b of malformed)
        cases.push({ what: 'malformed JSON', op, url, body: b, expect: [400] });
      for (const b of wrongTop)
        cases.push({ what: 'top-level type', op, url, body: b, expect: [400] });
      cases.push({ what: 'byte order mark', op, url, body: `\ufeff${toJson(validBody(op))}` });
      cases.push({ what: 'deeply nested array', op, url, body: deepArray });
      cases.push({ what: 'deeply nested object', op, url, body: deepObject });
      const valid = toJson(validBody(op));
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
    expect(report(await runAll(cases))).toBe('');
  });

  it('names the field when any field has the wrong type, a huge, negative or fractional number, 100 KB or an injection-shaped string', async () => {
    const rng = seeded(2);
    const cases: FuzzRequest[] = [];
    for (const op of bodyOps().filter((o) => o.role !== 'public')) {
      const base = validBody(op);
      for (const f of fieldsOf(op.body ?? undefined, base)) {
        const values: unknown[] = [...wrongTypes(f.type)];
        if (f.type === 'number' || f.type === 'integer') {
          values.push(...HUGE_NUMBERS, '1', '1e3', LONG_STRING);
        } else if (f.type === 'string') {
          values.push(
            ...rng.sample(HUGE_NUMBERS, cap(4)),
            LONG_STRING,
            ...rng.sample(INJECTIONS, cap(6)),
          );
        } else if (f.type === 'boolean') {
          values.push('true', 1, 0);
        } else if (f.type === 'array') {
          values.push(
            [LONG_STRING],
            Array.from({ length: 1001 }, (_, i) => `m${i}`),
            [[]],
            [null],
          );
        }
        for (const v of values) {
          const body = setPath(validBody(op), f.path, v);
          const shown =
            v instanceof Raw
              ? v.text
              : typeof v === 'string' && v.length > 40
                ? `${v.length} chars`
                : JSON.stringify(v)?.slice(0, 40);
          cases.push({
            what: `${f.path}=${shown}`,
            op,
            url: urlOf(op),
            body: toJson(body),
            field: f.path,
          });
        }
      }
    }
    expect(report(await runAll(cases))).toBe('');
  });

  it('refuses unknown fields and missing required fields on every body, naming them', async () => {
    const cases: FuzzRequest[] = [];
    for (const op of bodyOps().filter((o) => o.role !== 'public')) {
      const url = urlOf(op);
      const base = validBody(op);
      const unknown: [string, string][] = [
        ['unknownField', toJson({ ...base, unknownField: 1 })],
        ['isAdmin', toJson({ ...base, isAdmin: true })],
        ['balance', toJson({ ...base, balance: '1000000.00' })],
        ['id', toJson({ ...base, id: '00000000-0000-4000-8000-000000000000' })],
        [`${'k'.repeat(5000)}`, toJson({ ...base, ['k'.repeat(5000)]: 1 })],
      ];
      for (const [field, body] of unknown) {
        // Only a 400 that names the field: an unknown field must never be accepted and ignored.
        cases.push({ what: `unknown ${field.slice(0, 20)}`, op, url, body, expect: [400], field });
      }
      // class-transformer drops these two keys before the whitelist sees them: the request may
      // pass, but nothing may reach Object.prototype (checked below, in this very process).
      const proto: [string, string][] = [
        ['__proto__', toJson(base).replace(/^\{/, '{"__proto__":{"isAdmin":true},')],
        ['constructor', toJson({ ...base, constructor: { prototype: { isAdmin: true } } })],
      ];
      for (const [field, body] of proto) cases.push({ what: `key ${field}`, op, url, body, field });
      const nested = fieldsOf(op.body ?? undefined, base).filter(
        (f) => f.type === 'object' && !f.path.includes('.'),
      );
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
      for (const req of resolve(op.body ?? undefined)?.required ?? []) {
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
      const ev = op.path === '/v1/usage-events/batch' ? schemas.UsageEventDto : undefined;
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
    expect(report(await runAll(cases))).toBe('');
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('isAdmin');
  });

  it('survives seeded random mutations of several fields at once', async () => {
    const rng = seeded(3);
    const pool: unknown[] = [
      ...wrongTypes(undefined),
      ...HUGE_NUMBERS,
      ...INJECTIONS,
      LONG_STRING,
      undefined,
    ];
    const targets = bodyOps().filter((o) => o.role !== 'public');
    const cases: FuzzRequest[] = [];
    for (let i = 0; i < cap(300); i++) {
      const op = rng.pick(targets);
      let body = validBody(op);
      const fields = fieldsOf(op.body ?? undefined, body);
      const n = 2 + rng.int(3);
      for (const f of rng.sample(fields, n)) body = setPath(body, f.path, rng.pick(pool));
      if (rng.next() < 0.2) body = { ...body, [`x${rng.int(1000)}`]: rng.pick(pool) ?? null };
      cases.push({ what: `random #${i}`, op, url: urlOf(op), body: toJson(body) });
    }
    expect(report(await runAll(cases))).toBe('');
  });

  it('answers hostile path parameters on every operation with a 4xx and writes nothing', async () => {
    const rng = seeded(4);
    const uuid = (): string => {
      const h = Array.from({ length: 32 }, () => rng.int(16).toString(16)).join('');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20)}`;
    };
    const segments = (op: Operation, name: string): string[] => {
      const real = realParam(op, name);
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
    const cases: FuzzRequest[] = [];
    for (const op of ops.filter((o) => o.pathParams.length > 0)) {
      const body =
        HAS_BODY.includes(op.method) && op.body ? () => toJson(validBody(op)) : () => undefined;
      for (const p of op.pathParams) {
        for (const seg of segments(op, p)) {
          const url = urlOf(op, { [p]: seg });
          cases.push({ what: `{${p}}=${seg.slice(0, 30)}`, op, url, body: body() });
        }
      }
    }
    // The raw traversal: routes elsewhere (or nowhere), never a 5xx.
    for (const op of ops.filter((o) => o.pathParams.length > 0).slice(0, cap(10))) {
      cases.push({ what: 'raw ../', op, url: urlOf(op, { [op.pathParams[0]]: '../../etc' }) });
    }
    const failures = await runAll(cases);
    expect(report(failures)).toBe('');
  });

  it('answers hostile query parameters on every list and report with a 4xx (or a 2xx that writes nothing)', async () => {
    const b64 = (v: unknown): string =>
      Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
    const values: Record<string, string[]> = {
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
      to: [
        'notadate',
        '1970-01-01',
        '2026-13-01',
        '2026-11-01T00:00:00.1234567Z',
        '%00',
        '0001-01-01',
      ],
      groupBy: [
        'x',
        '',
        'MODEL',
        'model%00',
        encodeURIComponent("' OR 1=1 --"),
        'day&groupBy=model',
      ],
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
    const baseQuery: Record<string, string> = {
      model: 'gpt-image-2',
      size: '1024x1024',
      quality: 'high',
    };
    const cases: FuzzRequest[] = [];
    for (const op of ops.filter((o) => o.method === 'get' && o.queryParams.length > 0)) {
      const required = op.queryParams.filter((q) => q.required).map((q) => q.name);
      const base = (skip: string): string[] =>
        op.queryParams
          .filter((q) => q.name !== skip && (required.includes(q.name) || q.name in baseQuery))
          .map((q) => `${q.name}=${encodeURIComponent(baseQuery[q.name] ?? 'x')}`);
      for (const q of op.queryParams) {
        const vs = values[q.name];
        if (!vs) throw new Error(`no hostile values for ?${q.name} of ${op.path}: add some`);
        for (const v of vs) {
          const query = [...base(q.name), `${q.name}=${v}`].join('&');
          cases.push({ what: `?${q.name}=${v.slice(0, 30)}`, op, url: urlOf(op, {}, query) });
        }
      }
      for (const extra of ['foo=bar', '__proto__[x]=1', 'constructor=1', 'limit[a]=1']) {
        cases.push({ what: `?${extra}`, op, url: urlOf(op, {}, [...base(''), extra].join('&')) });
      }
      for (const r of required) {
        cases.push({
          what: `missing ?${r}`,
          op,
          url: urlOf(op, {}, base(r).join('&')),
          expect: [400],
          field: r,
        });
      }
    }
    // Junk query strings on every other operation too (health, /v1/me, bodies): ignored or
    // refused, never a fault. Deletes and key rotation are left out: they would succeed.
    for (const op of ops.filter(
      (o) =>
        o.queryParams.length === 0 && o.method !== 'delete' && !o.path.endsWith('/console-key'),
    )) {
      const body =
        HAS_BODY.includes(op.method) && op.body ? () => toJson(validBody(op)) : () => undefined;
      for (const junk of [
        'foo=bar',
        '%00=%00',
        'limit=abc&cursor=%00',
        `q=${'x'.repeat(3000)}`,
        '%',
      ]) {
        cases.push({
          what: `junk ?${junk.slice(0, 20)}`,
          op,
          url: urlOf(op, {}, junk),
          body: body(),
        });
      }
    }
    expect(report(await runAll(cases))).toBe('');
  });

  it('refuses a body over 2 MB with 413, a batch of 1,001 events with 400, and writes nothing', async () => {
    const cases: FuzzRequest[] = [];
    for (const op of bodyOps()) {
      const huge = toJson({ ...validBody(op), name: 'A'.repeat(2 * 1024 * 1024 + 10) });
      cases.push({ what: 'over 2 MB', op, url: urlOf(op), body: huge, expect: [413] });
    }
    const batch = ops.find((o) => o.path === '/v1/usage-events/batch');
    expect(batch).toBeDefined();
    if (batch) {
      const ev = () => (validBody(batch).events as unknown[])[0];
      cases.push({
        what: '1001 events',
        op: batch,
        url: urlOf(batch),
        body: toJson({ events: Array.from({ length: 1001 }, ev) }),
        expect: [400],
        field: 'events',
      });
      cases.push({
        what: '0 events',
        op: batch,
        url: urlOf(batch),
        body: toJson({ events: [] }),
        expect: [400],
        field: 'events',
      });
      // 1,000 events each wrong in its own way: one rejected result each, nothing booked.
      const pool: unknown[] = [null, 1, 'x', [], {}, ...wrongTypes(undefined)];
      const rng = seeded(5);
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
        url: urlOf(batch),
        body: toJson({ events: bad }),
        expect: [200],
      });
    }
    expect(report(await runAll(cases))).toBe('');
  });

  it('changed no table outside the mutations it accepted', async () => {
    const after = await rowCounts(t.sql, tables);
    const unexpected = tables.filter(
      (x) =>
        after[x] !== countsBefore[x] && !changedByAccepted.has(x) && !REFUSAL_COUNTERS.includes(x),
    );
    expect(unexpected).toEqual([]);
    expect(total).toBeGreaterThan(1000);
    // Every documented operation was fuzzed.
    expect(ops.map((o) => `${o.method} ${o.path}`).filter((k) => !touched.has(k))).toEqual([]);
  });
});
