import { randomBytes } from 'node:crypto';
import { createServer, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/** One API call the service made to the stub, as Stripe would have received it. */
export interface StubRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The form-encoded body, keys as sent (`line_items[0][price_data][unit_amount]`). */
  form: Record<string, string>;
}

export interface StubSession {
  id: string;
  object: 'checkout.session';
  url: string;
  mode: string;
  status: 'open';
  payment_status: 'unpaid';
  payment_intent: null;
  amount_total: number;
  amount_subtotal: number;
  currency: string;
  client_reference_id: string | null;
  metadata: Record<string, string>;
  success_url: string;
  cancel_url: string;
  livemode: false;
}

export interface StripeStub {
  /** Base URL to put in STRIPE_API_BASE. */
  url: string;
  requests: StubRequest[];
  /** Sessions created, by id. */
  sessions: Map<string, StubSession>;
  /** Every request fails with this HTTP status (and a Stripe error body) until reset with null. */
  failWith(status: number | null): void;
  /** The session created for a top-up (by its metadata). */
  sessionFor(topUpId: string): StubSession;
  close(): Promise<void>;
}

/** A stub-only route's answer; null lets the request through to the Stripe API routes. */
export interface StubReply {
  status: number;
  body: unknown;
}

/** A request as a stub-only route sees it. */
export interface StubRouteRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
}

export interface StripeStubOptions {
  /** A fixed port on 127.0.0.1; absent or 0: a free port. */
  port?: number;
  /** Called once for each Checkout Session created (not for an idempotent replay). */
  onSessionCreated?: (session: StubSession) => void;
  /**
   * Routes of your own (e.g. tools/stripe-local.ts's /_local/*), tried before the Stripe API
   * routes; they are not recorded in `requests` and not affected by `failWith`.
   */
  extraRoutes?: (req: StubRouteRequest) => Promise<StubReply | null>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Request-Id': `req_${randomBytes(6).toString('hex')}`,
  });
  res.end(JSON.stringify(body));
}

/**
 * A tiny local stand-in for the Stripe API (node:http on 127.0.0.1, a free port unless
 * `options.port`): it answers POST /v1/checkout/sessions like Stripe does, honours
 * Idempotency-Key the way Stripe does (same key: same session) and records every request for
 * assertions. Used by the e2e tests (test/helpers/stripe-stub.ts) and `npm run stripe:local`.
 */
export async function startStripeStub(options: StripeStubOptions = {}): Promise<StripeStub> {
  const requests: StubRequest[] = [];
  const sessions = new Map<string, StubSession>();
  const byIdempotencyKey = new Map<string, StubSession>();
  let failing: number | null = null;

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (options.extraRoutes) {
        let reply: StubReply | null;
        try {
          reply = await options.extraRoutes({
            method: req.method ?? '',
            path,
            query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
            body: raw,
          });
        } catch (err) {
          reply = {
            status: 500,
            body: { error: { type: 'api_error', message: `stub: ${String(err)}` } },
          };
        }
        if (reply !== null) {
          send(res, reply.status, reply.body);
          return;
        }
      }
      const form = Object.fromEntries(new URLSearchParams(raw));
      requests.push({ method: req.method ?? '', path, headers: req.headers, form });
      if (failing !== null) {
        send(res, failing, {
          error: { type: 'api_error', message: 'stub: Stripe is failing on purpose' },
        });
        return;
      }
      if (req.method === 'POST' && path === '/v1/checkout/sessions') {
        const key = req.headers['idempotency-key'];
        const replay = typeof key === 'string' ? byIdempotencyKey.get(key) : undefined;
        if (replay) {
          send(res, 200, replay);
          return;
        }
        const id = `cs_test_${randomBytes(12).toString('hex')}`;
        const unit = Number.parseInt(form['line_items[0][price_data][unit_amount]'] ?? '0', 10);
        const quantity = Number.parseInt(form['line_items[0][quantity]'] ?? '1', 10);
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(form)) {
          const m = /^metadata\[(.+)\]$/.exec(k);
          if (m) metadata[m[1]] = v;
        }
        const session: StubSession = {
          id,
          object: 'checkout.session',
          url: `https://checkout.stripe.test/c/pay/${id}`,
          mode: form.mode ?? 'payment',
          status: 'open',
          payment_status: 'unpaid',
          payment_intent: null,
          amount_total: unit * quantity,
          amount_subtotal: unit * quantity,
          currency: form['line_items[0][price_data][currency]'] ?? 'usd',
          client_reference_id: form.client_reference_id ?? null,
          metadata,
          success_url: form.success_url ?? '',
          cancel_url: form.cancel_url ?? '',
          livemode: false,
        };
        sessions.set(id, session);
        if (typeof key === 'string') byIdempotencyKey.set(key, session);
        options.onSessionCreated?.(session);
        send(res, 200, session);
        return;
      }
      send(res, 404, {
        error: { type: 'invalid_request_error', message: `stub: no route ${req.method} ${path}` },
      });
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject); // e.g. EADDRINUSE on a fixed port
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sessions,
    failWith(status) {
      failing = status;
    },
    sessionFor(topUpId) {
      const s = [...sessions.values()].find((x) => x.metadata.topUpId === topUpId);
      if (!s) throw new Error(`stub: no session for top-up ${topUpId}`);
      return s;
    },
    close() {
      return new Promise((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
    },
  };
}

/** A Stripe event envelope around `object`, as Stripe posts it. */
export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  id = newEventId(),
): Record<string, unknown> {
  return {
    id,
    object: 'event',
    api_version: '2025-01-01',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  };
}

export const newEventId = (): string => `evt_test_${randomBytes(12).toString('hex')}`;

/** The exact body and a Stripe-Signature header for it, signed with the real SDK. */
export function signed(
  event: Record<string, unknown>,
  secret: string,
  timestamp?: number,
): { payload: string; header: string } {
  const payload = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
  return { payload, header };
}
