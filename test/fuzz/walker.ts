import type { FuzzContext, Role } from './context.js';

/*
 * The OpenAPI walker: every operation /docs-json documents, as Operation objects, with the
 * role of its path, real values for its path parameters and a valid body.
 */

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface SchemaObject {
  type?: string;
  $ref?: string;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  items?: SchemaObject;
  enum?: unknown[];
  nullable?: boolean;
}

export interface Operation {
  method: Method;
  /** The template as documented: `/v1/admin/groups/{name}`. */
  path: string;
  pathParams: string[];
  queryParams: { name: string; required: boolean; schema: SchemaObject }[];
  body: SchemaObject | null;
  role: Role;
}

/** The parts of /docs-json the walker reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: { schemas: Record<string, SchemaObject> };
}

export const roleOf = (path: string): Role => {
  if (path.startsWith('/v1/admin/')) return 'admin';
  if (path.startsWith('/v1/me')) return 'customer';
  if (path.startsWith('/v1/gateway/') || path.startsWith('/v1/usage-events')) return 'gateway';
  // The console's sign-up, sign-in and invite routes take no key (a session cookie or none).
  if (path.startsWith('/v1/console/')) return 'public';
  if (path.startsWith('/v1/stripe/') || !path.startsWith('/v1/')) return 'public';
  return 'any';
};

export const HAS_BODY: Method[] = ['post', 'put', 'patch'];

const future = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString();

export class OpenApiWalker {
  readonly ops: Operation[] = [];
  readonly schemas: Record<string, SchemaObject>;

  constructor(
    spec: OpenApiDocument,
    private readonly ctx: FuzzContext,
  ) {
    this.schemas = spec.components.schemas;
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
        this.ops.push({
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
  }

  bodyOps(): Operation[] {
    return this.ops.filter((o) => o.body !== null);
  }

  /**
   * Real values for path parameters: resources created in setup. Deleting and key rotation use
   * spare resources: a variant of a real id that the service accepts (an upper-case uuid) may
   * succeed, and must not take away what the other cases need.
   */
  realParam(op: Operation, name: string): string {
    const ctx = this.ctx;
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
  }

  urlOf(op: Operation, params: Record<string, string> = {}, query = ''): string {
    let url = op.path;
    for (const p of op.pathParams) {
      url = url.replace(`{${p}}`, params[p] ?? encodeURIComponent(this.realParam(op, p)));
    }
    return query ? `${url}?${query}` : url;
  }

  /**
   * A valid body for each operation that takes one: mutations change one thing in it, so a 400
   * must name that thing. Fresh unique values each call, so an accepted body never turns the
   * next one into a conflict.
   */
  validBody(op: Operation): Record<string, unknown> {
    const ctx = this.ctx;
    const uniq = (): string => ctx.uniq();
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
        return this.fromSchema(op.body);
    }
  }

  resolve(s: SchemaObject | undefined): SchemaObject | undefined {
    if (!s?.$ref) return s;
    return this.schemas[s.$ref.replace('#/components/schemas/', '')];
  }

  fromSchema(s: SchemaObject | null | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const r = this.resolve(s ?? undefined);
    for (const [k, p] of Object.entries(r?.properties ?? {})) {
      const ps = this.resolve(p);
      if (ps?.type === 'number' || ps?.type === 'integer') out[k] = 1;
      else if (ps?.type === 'boolean') out[k] = true;
      else if (ps?.type === 'string') out[k] = ps.enum ? ps.enum[0] : 'x';
    }
    return out;
  }

  /** Every field of a body schema, nested ones as `usage.inputTokens`, array items as `events.0.model`. */
  fieldsOf(
    s: SchemaObject | undefined,
    base: unknown,
    prefix = '',
  ): { path: string; type: string }[] {
    const r = this.resolve(s);
    const out: { path: string; type: string }[] = [];
    for (const [k, p] of Object.entries(r?.properties ?? {})) {
      const ps = this.resolve(p);
      const path = prefix ? `${prefix}.${k}` : k;
      const type = ps?.type ?? (ps?.properties ? 'object' : 'string');
      out.push({ path, type });
      const child = (base as Record<string, unknown> | undefined)?.[k];
      if (ps?.properties && child && typeof child === 'object')
        out.push(...this.fieldsOf(ps, child, path));
      if (
        type === 'array' &&
        Array.isArray(child) &&
        child.length > 0 &&
        this.resolve(ps?.items)?.properties
      ) {
        out.push(...this.fieldsOf(ps?.items, child[0], `${path}.0`));
      }
    }
    return out;
  }
}
