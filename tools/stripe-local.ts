/**
 * `npm run stripe:local`: try top-ups end to end without a Stripe account. Starts the Stripe
 * stub (tools/stripe-stub.ts) on 127.0.0.1:12111, prints the environment to run the service
 * with, prints a ready-to-run curl for every Checkout Session the service creates, and adds
 * stub-only endpoints that play the customer and Stripe: each one signs a webhook event with
 * the real SDK (`Stripe.webhooks.generateTestHeaderString`) and POSTs it to the service.
 *
 *   POST /_local/sessions/{sessionId}/pay                    checkout.session.completed (paid)
 *   POST /_local/sessions/{sessionId}/expire                 checkout.session.expired
 *   POST /_local/payment-intents/{pi}/refund[?amount=cents]  charge.refunded (default: the rest)
 *   GET  /_local/sessions                                    the sessions and their state
 *
 * Paying (or expiring) a session again redelivers the same event (same id), as Stripe retries
 * do: useful when the service was not running.
 *
 * Env: STRIPE_STUB_PORT (12111), BILLING_WEBHOOK_URL (http://127.0.0.1:3000/v1/stripe/webhook),
 * STRIPE_STUB_WEBHOOK_SECRET (whsec_local_stub_secret: give the service the same value).
 */
import { randomBytes } from 'node:crypto';
import {
  newEventId,
  signed,
  startStripeStub,
  stripeEvent,
  type StripeStub,
  type StubReply,
  type StubRouteRequest,
  type StubSession,
} from './stripe-stub.js';

const SECRET_KEY = 'sk_test_local';
const webhookSecret = process.env.STRIPE_STUB_WEBHOOK_SECRET || 'whsec_local_stub_secret';
const webhookUrl = process.env.BILLING_WEBHOOK_URL || 'http://127.0.0.1:3000/v1/stripe/webhook';
const port = Number(process.env.STRIPE_STUB_PORT || '12111');

/** What happened to a session after its creation: the stub's own record stays as created. */
interface LocalState {
  status: 'open' | 'complete' | 'expired';
  paymentIntent: string | null;
  chargeId: string | null;
  /** Cumulative, in cents, like Stripe's charge.amount_refunded. */
  amountRefunded: number;
  /** The event that moved it out of `open`, redelivered as is when asked again. */
  event: Record<string, unknown> | null;
}

const states = new Map<string, LocalState>();
const sessionByPaymentIntent = new Map<string, string>();
let stub: StripeStub;
let base = '';

/** Cents as a display string (85.00); display only, never money math. */
const dollars = (cents: number): string =>
  `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;

const stripeError = (status: number, message: string): StubReply => ({
  status,
  body: { error: { type: 'invalid_request_error', message: `stub: ${message}` } },
});

/** Signs `event` with the webhook secret and POSTs it to the service. */
async function deliver(event: Record<string, unknown>): Promise<StubReply> {
  const { payload, header } = signed(event, webhookSecret);
  let status: number | null = null;
  let response: unknown;
  try {
    const res = await fetch(webhookUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Stripe-Signature': header },
      body: payload,
      signal: AbortSignal.timeout(15_000),
    });
    status = res.status;
    const text = await res.text();
    try {
      response = JSON.parse(text) as unknown;
    } catch {
      response = text;
    }
  } catch (err) {
    // fetch() says "fetch failed"; the cause says why (ECONNREFUSED: the service is not up).
    const why = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    response = `not delivered: ${why instanceof Error ? why.message : String(why)}`;
  }
  const ok = status !== null && status >= 200 && status < 300;
  const { id, type } = event as { id: string; type: string };
  console.log(
    `  -> ${type} ${id} to ${webhookUrl}: ${status ?? 'failed'} ${JSON.stringify(response)}`,
  );
  return {
    // 502: the event exists on the "Stripe" side but the service did not take it.
    status: ok ? 200 : 502,
    body: { event: { id, type }, delivery: { url: webhookUrl, status, response } },
  };
}

function stateOf(id: string): LocalState {
  let s = states.get(id);
  if (!s) {
    s = { status: 'open', paymentIntent: null, chargeId: null, amountRefunded: 0, event: null };
    states.set(id, s);
  }
  return s;
}

/** The session as Stripe would show it now. */
function sessionView(session: StubSession): Record<string, unknown> {
  const s = stateOf(session.id);
  return {
    ...session,
    status: s.status,
    payment_status: s.status === 'complete' ? 'paid' : 'unpaid',
    payment_intent: s.paymentIntent,
  };
}

/** Moves an open session to `target` (one event), or redelivers the event that did. */
async function closeSession(id: string, target: 'complete' | 'expired'): Promise<StubReply> {
  const session = stub.sessions.get(id);
  if (!session) return stripeError(404, `no such checkout session: ${id}`);
  const s = stateOf(id);
  if (s.status === target && s.event) {
    console.log(`${id} is already ${target}: redelivering ${String(s.event.id)}`);
    return deliver(s.event);
  }
  if (s.status !== 'open') return stripeError(400, `checkout session ${id} is ${s.status}`);
  if (target === 'complete') {
    s.paymentIntent = `pi_local_${randomBytes(12).toString('hex')}`;
    s.chargeId = `ch_local_${randomBytes(12).toString('hex')}`;
    sessionByPaymentIntent.set(s.paymentIntent, id);
  }
  s.status = target;
  s.event = stripeEvent(
    target === 'complete' ? 'checkout.session.completed' : 'checkout.session.expired',
    sessionView(session),
  );
  console.log(
    target === 'complete'
      ? `${id} paid ${dollars(session.amount_total)} ${session.currency.toUpperCase()} (payment intent ${s.paymentIntent})`
      : `${id} expired`,
  );
  const reply = await deliver(s.event);
  if (target === 'complete') {
    console.log(
      `  refund it: curl -X POST '${base}/_local/payment-intents/${s.paymentIntent}/refund?amount=${session.amount_total}'`,
    );
  }
  return reply;
}

/** A refund of `amount` cents (default: what is left): charge.refunded, cumulative. */
async function refund(pi: string, amountParam: string | null): Promise<StubReply> {
  const id = sessionByPaymentIntent.get(pi);
  const session = id === undefined ? undefined : stub.sessions.get(id);
  if (id === undefined || !session) return stripeError(404, `no such payment intent: ${pi}`);
  const s = stateOf(id);
  const left = session.amount_total - s.amountRefunded;
  const amount = amountParam === null ? left : Number(amountParam);
  if (!Number.isSafeInteger(amount) || amount <= 0) {
    return stripeError(400, 'amount must be a positive whole number of cents');
  }
  if (amount > left) {
    return stripeError(
      400,
      `refund of ${amount} cents is more than the ${left} cents left on ${s.chargeId}`,
    );
  }
  s.amountRefunded += amount;
  const charge = {
    id: s.chargeId,
    object: 'charge',
    amount: session.amount_total,
    amount_captured: session.amount_total,
    amount_refunded: s.amountRefunded,
    captured: true,
    currency: session.currency,
    paid: true,
    refunded: s.amountRefunded === session.amount_total,
    status: 'succeeded',
    payment_intent: pi,
    // Stripe copies payment_intent_data.metadata onto the charge; the service sends the same.
    metadata: session.metadata,
    livemode: false,
    created: Math.floor(Date.now() / 1000),
  };
  console.log(
    `${pi} refunded ${dollars(amount)} (${dollars(s.amountRefunded)} of ${dollars(session.amount_total)} in all)`,
  );
  return deliver(stripeEvent('charge.refunded', charge, newEventId()));
}

async function localRoutes(req: StubRouteRequest): Promise<StubReply | null> {
  if (!req.path.startsWith('/_local/')) return null;
  if (req.method === 'GET' && req.path === '/_local/sessions') {
    const data = [...stub.sessions.values()].map((session) => {
      const view = sessionView(session);
      return { ...view, amount_refunded: stateOf(session.id).amountRefunded };
    });
    return { status: 200, body: { object: 'list', data } };
  }
  let m = /^\/_local\/sessions\/([^/]+)\/(pay|expire)$/.exec(req.path);
  if (req.method === 'POST' && m) {
    return closeSession(decodeURIComponent(m[1]), m[2] === 'pay' ? 'complete' : 'expired');
  }
  m = /^\/_local\/payment-intents\/([^/]+)\/refund$/.exec(req.path);
  if (req.method === 'POST' && m) return refund(decodeURIComponent(m[1]), req.query.get('amount'));
  return stripeError(404, `no route ${req.method} ${req.path}`);
}

function onSessionCreated(session: StubSession): void {
  console.log(
    `\nCheckout Session ${session.id} for top-up ${session.metadata.topUpId ?? '?'}: ` +
      `${dollars(session.amount_total)} ${session.currency.toUpperCase()}\n` +
      `  pay it:    curl -X POST ${base}/_local/sessions/${session.id}/pay\n` +
      `  expire it: curl -X POST ${base}/_local/sessions/${session.id}/expire`,
  );
}

async function main(): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`STRIPE_STUB_PORT must be a port number, got ${process.env.STRIPE_STUB_PORT}`);
  }
  stub = await startStripeStub({ port, onSessionCreated, extraRoutes: localRoutes });
  base = stub.url;
  const servicePort = new URL(webhookUrl).port || '80';
  console.log(
    [
      `Stripe stub listening on ${base}; webhooks go to ${webhookUrl} (BILLING_WEBHOOK_URL).`,
      '',
      'Run the billing service with:',
      `  PORT=${servicePort} STRIPE_SECRET_KEY=${SECRET_KEY} STRIPE_WEBHOOK_SECRET=${webhookSecret} STRIPE_API_BASE=${base} npm start`,
      '',
      'Then create a top-up (POST /v1/me/top-ups with a console key); its Checkout Session is',
      'printed here with the curl that pays it. Also:',
      `  curl ${base}/_local/sessions`,
      `  curl -X POST '${base}/_local/payment-intents/{pi}/refund?amount={cents}'`,
      '',
      'Ctrl-C to stop.',
    ].join('\n'),
  );
  const stop = (): void => {
    setTimeout(() => process.exit(0), 1000).unref();
    void stub.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  const code = (err as { code?: string }).code;
  const hint = code === 'EADDRINUSE' ? ` (port ${port} is taken: set STRIPE_STUB_PORT)` : '';
  process.stderr.write(
    `stripe-local failed: ${err instanceof Error ? err.message : String(err)}${hint}\n`,
  );
  process.exit(1);
});
