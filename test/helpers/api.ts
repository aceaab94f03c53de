import { expect } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Response, Test } from 'supertest';
import type { AccountWithKeyDto, AdjustmentDto } from '../../src/accounts/dto/account.dto.js';
import type { PromotionDto } from '../../src/payments/dto/promotion.dto.js';
import type { TokenWithKeyDto } from '../../src/tokens/dto/token.dto.js';
import { signed, StripeStub, StubSession, stripeEvent } from './stripe-stub.js';
import { bearer, createTestApp, TestApp } from './test-app.js';

/**
 * Helpers the e2e tests share: headers per role, the contract's error body checks, and the
 * setup requests (accounts, credit, tokens, usage events, top-ups, Stripe webhooks) they make
 * through the API. Each helper makes exactly the request its name says; those that set up
 * state expect it to succeed.
 */

/** An ISO 8601 UTC timestamp as the API writes it. */
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** A UUID, as the API writes ids. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A free-form JSON request body. */
export type Body = Record<string, unknown>;

/** A response body as supertest gives it: `any` by design, its shape checked by the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// Headers

/** The Authorization header of the admin key: `.set(...adminHeaders(t))`. */
export const adminHeaders = (t: TestApp): [string, string] => bearer(t.adminKey);

/** The Authorization header of the gateway key: `.set(...gatewayHeaders(t))`. */
export const gatewayHeaders = (t: TestApp): [string, string] => bearer(t.gatewayKey);

// ---------------------------------------------------------------------------------------------
// Error bodies

/**
 * The error envelope: `status`, a body of `{ error }` alone with `code` and a string message,
 * and no stack trace. Says nothing about the other keys of `error`; see expectErrorBody.
 */
export function expectErrorCode(res: Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe('string');
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
}

/** The contract's error body: `{ error: { code, message, details? } }` and nothing else. */
export function expectErrorBody(res: Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body)).toEqual(['error']);
  const err = res.body.error as Record<string, unknown>;
  expect(err.code).toBe(code);
  expect(typeof err.message).toBe('string');
  for (const k of Object.keys(err)) expect(['code', 'message', 'details']).toContain(k);
  if (err.details !== undefined) {
    expect(Array.isArray(err.details)).toBe(true);
    for (const d of err.details as unknown[]) {
      expect(d).toEqual({ field: expect.any(String), message: expect.any(String) });
    }
  }
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
}

/** The fields an error body's details name, each once, sorted. */
export const errorFields = (res: Response): string[] =>
  [...new Set(((res.body.error?.details ?? []) as { field: string }[]).map((d) => d.field))].sort();

// ---------------------------------------------------------------------------------------------
// Accounts and adjustments

/** An account as its creation answers it: with the ck_ console key, shown only then. */
export type CreatedAccount = AccountWithKeyDto;

/** POST /v1/admin/accounts with `{ name, ...fields }`, expecting 201. */
export async function createAccount(
  t: TestApp,
  name: string,
  fields: Body = {},
): Promise<CreatedAccount> {
  const res = await t.http
    .post('/v1/admin/accounts')
    .set(...adminHeaders(t))
    .send({ name, ...fields })
    .expect(201);
  return res.body as CreatedAccount;
}

/** POST /v1/admin/accounts/{id}/adjustments as admin, with the Idempotency-Key unless null. */
export function postAdjustment(
  t: TestApp,
  accountId: string,
  idempotencyKey: string | null,
  body: Body,
): Test {
  const req = t.http.post(`/v1/admin/accounts/${accountId}/adjustments`).set(...adminHeaders(t));
  if (idempotencyKey !== null) req.set('Idempotency-Key', idempotencyKey);
  return req.send(body);
}

/** An adjustment as its booking answers it. */
export type Adjustment = AdjustmentDto;

/**
 * Books `amount` USD (negative: a debit) on an account through an admin adjustment with a
 * fresh Idempotency-Key, expecting 201.
 */
export async function credit(
  t: TestApp,
  accountId: string,
  amount: string,
  reason = 'test',
): Promise<Adjustment> {
  const res = await postAdjustment(t, accountId, randomUUID(), { amount, reason }).expect(201);
  return res.body as Adjustment;
}

/** A new account holding `balance` USD (credited unless zero). */
export async function fundedAccount(
  t: TestApp,
  name: string,
  balance = '10.00',
  reason = 'test',
): Promise<CreatedAccount> {
  const account = await createAccount(t, name);
  if (!new Decimal(balance).isZero()) await credit(t, account.id, balance, reason);
  return account;
}

/** GET /v1/me with a console key, expecting 200: the balance its customer sees. */
export async function balanceOf(t: TestApp, consoleKey: string): Promise<string> {
  const res = await t.http
    .get('/v1/me')
    .set(...bearer(consoleKey))
    .expect(200);
  return res.body.balance as string;
}

// ---------------------------------------------------------------------------------------------
// API tokens

/** A token as its creation answers it: with the sk- key, shown only then. */
export type CreatedToken = TokenWithKeyDto;

/** POST /v1/admin/accounts/{id}/tokens with `{ name: 'test token', ...body }`, expecting 201. */
export async function createToken(
  t: TestApp,
  accountId: string,
  body: Body = {},
): Promise<CreatedToken> {
  const res = await t.http
    .post(`/v1/admin/accounts/${accountId}/tokens`)
    .set(...adminHeaders(t))
    .send({ name: 'test token', ...body })
    .expect(201);
  return res.body as CreatedToken;
}

// ---------------------------------------------------------------------------------------------
// Usage events (as the gateway)

/** POST /v1/usage-events with the gateway key. */
export const postEvent = (t: TestApp, event: unknown): Test =>
  t.http
    .post('/v1/usage-events')
    .set(...gatewayHeaders(t))
    .send(event as object);

/** POST /v1/usage-events/batch with the gateway key and `{ events }`. */
export const postEvents = (t: TestApp, events: unknown[]): Test =>
  t.http
    .post('/v1/usage-events/batch')
    .set(...gatewayHeaders(t))
    .send({ events });

// ---------------------------------------------------------------------------------------------
// Promotions

/** A promotion as the admin API answers it. */
export type Promotion = PromotionDto;

/** POST /v1/admin/promotions with `body`, expecting 201. */
export async function createPromotion(t: TestApp, body: Body): Promise<Promotion> {
  const res = await t.http
    .post('/v1/admin/promotions')
    .set(...adminHeaders(t))
    .send(body)
    .expect(201);
  return res.body as Promotion;
}

// ---------------------------------------------------------------------------------------------
// Top-ups and the Stripe webhook

/** Where Checkout sends customers back to, in an app made by createStripeTestApp. */
export const PUBLIC_BASE_URL = 'https://console.example.test';

/** An app wired to the Stripe stub, verifying webhooks with `webhookSecret`. */
export function createStripeTestApp(
  stub: StripeStub,
  webhookSecret: string,
  secretKey = 'sk_test_stub_0123456789',
): Promise<TestApp> {
  return createTestApp({
    STRIPE_SECRET_KEY: secretKey,
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    STRIPE_API_BASE: stub.url,
    PUBLIC_BASE_URL,
  });
}

/** POST /v1/stripe/webhook with these exact bytes, and the Stripe-Signature header if given. */
export function postWebhook(t: TestApp, payload: string | Buffer, header?: string): Test {
  const req = t.http.post('/v1/stripe/webhook').set('Content-Type', 'application/json');
  if (header !== undefined) req.set('Stripe-Signature', header);
  return req.send(payload);
}

/** Delivers `event` to the webhook as Stripe would, signed with `secret` (at `timestamp`). */
export function deliverWebhook(
  t: TestApp,
  event: Record<string, unknown>,
  secret: string,
  timestamp?: number,
): Test {
  const { payload, header } = signed(event, secret, timestamp);
  return postWebhook(t, payload, header);
}

/** A pending top-up created through the API (and the stub), with ids for its payment events. */
export interface PendingTopUp {
  accountId: string;
  consoleKey: string;
  topUpId: string;
  /** The cash price the API quoted for the credit. */
  price: string;
  session: StubSession;
  paymentIntent: string;
  chargeId: string;
}

/** POST /v1/me/top-ups with `{ credit: amount }` as the account's customer, expecting 201. */
export async function createTopUp(
  t: TestApp,
  stub: StripeStub,
  account: { id: string; consoleKey: string },
  amount: string,
): Promise<PendingTopUp> {
  const res = await t.http
    .post('/v1/me/top-ups')
    .set(...bearer(account.consoleKey))
    .send({ credit: amount })
    .expect(201);
  return {
    accountId: account.id,
    consoleKey: account.consoleKey,
    topUpId: res.body.id,
    price: res.body.price,
    session: stub.sessionFor(res.body.id),
    paymentIntent: `pi_test_${randomBytes(8).toString('hex')}`,
    chargeId: `ch_test_${randomBytes(8).toString('hex')}`,
  };
}

/** A `type` event about the top-up's Checkout session, completed and paid unless overridden. */
export const sessionEvent = (
  c: PendingTopUp,
  type: string,
  overrides: Body = {},
  id?: string,
): Record<string, unknown> =>
  stripeEvent(
    type,
    {
      ...c.session,
      status: 'complete',
      payment_status: 'paid',
      payment_intent: c.paymentIntent,
      ...overrides,
    },
    id,
  );

/** checkout.session.completed: the top-up paid. */
export const paidEvent = (
  c: PendingTopUp,
  overrides: Body = {},
  id?: string,
): Record<string, unknown> => sessionEvent(c, 'checkout.session.completed', overrides, id);

/** charge.refunded for the top-up's charge, `amountRefunded` cents of it refunded in all. */
export const refundedEvent = (
  c: PendingTopUp,
  amountRefunded: unknown,
  overrides: Body = {},
  id?: string,
): Record<string, unknown> =>
  stripeEvent(
    'charge.refunded',
    {
      id: c.chargeId,
      object: 'charge',
      amount: c.session.amount_total,
      amount_captured: c.session.amount_total,
      amount_refunded: amountRefunded,
      currency: 'usd',
      payment_intent: c.paymentIntent,
      metadata: { topUpId: c.topUpId, accountId: c.accountId },
      refunded: amountRefunded === c.session.amount_total,
      ...overrides,
    },
    id,
  );

/** GET /v1/me/top-ups/{id} as the top-up's customer, expecting 200: its body. */
export async function topUpView(t: TestApp, c: PendingTopUp): Promise<Json> {
  const res = await t.http
    .get(`/v1/me/top-ups/${c.topUpId}`)
    .set(...bearer(c.consoleKey))
    .expect(200);
  return res.body;
}

/** A `charge.dispute.*` event about the top-up's charge, `amount` cents disputed. */
export const disputeEvent = (
  c: PendingTopUp,
  type: string,
  disputeId: string,
  amount: unknown,
  overrides: Body = {},
  id?: string,
): Record<string, unknown> =>
  stripeEvent(
    type,
    {
      id: disputeId,
      object: 'dispute',
      amount,
      currency: 'usd',
      charge: c.chargeId,
      payment_intent: c.paymentIntent,
      reason: 'fraudulent',
      status: type === 'charge.dispute.closed' ? 'lost' : 'needs_response',
      is_charge_refundable: false,
      livemode: false,
      ...overrides,
    },
    id,
  );

/** A fresh Stripe dispute id. */
export const newDisputeId = (): string => `dp_test_${randomBytes(8).toString('hex')}`;

/** A fresh Stripe refund id. */
export const newRefundId = (): string => `re_test_${randomBytes(8).toString('hex')}`;

/** A refund `type` event (charge.refund.updated by default) for one refund of the top-up's charge. */
export const refundUpdatedEvent = (
  c: PendingTopUp,
  refundId: string,
  amount: unknown,
  status: string,
  overrides: Body = {},
  type = 'charge.refund.updated',
  id?: string,
): Record<string, unknown> =>
  stripeEvent(
    type,
    {
      id: refundId,
      object: 'refund',
      amount,
      currency: 'usd',
      charge: c.chargeId,
      payment_intent: c.paymentIntent,
      status,
      ...(status === 'failed' ? { failure_reason: 'expired_or_canceled_card' } : {}),
      ...overrides,
    },
    id,
  );

/** POST /v1/me/top-ups as the account's customer, with the Idempotency-Key unless null. */
export function postTopUp(
  t: TestApp,
  consoleKey: string,
  body: Body,
  idempotencyKey: string | null = null,
): Test {
  const req = t.http.post('/v1/me/top-ups').set(...bearer(consoleKey));
  if (idempotencyKey !== null) req.set('Idempotency-Key', idempotencyKey);
  return req.send(body);
}

/** A top-up created through the API and paid through the webhook (signed with `secret`). */
export async function paidTopUp(
  t: TestApp,
  stub: StripeStub,
  account: { id: string; consoleKey: string },
  amount: string,
  secret: string,
): Promise<PendingTopUp> {
  const c = await createTopUp(t, stub, account, amount);
  const res = await deliverWebhook(t, paidEvent(c), secret).expect(200);
  expect(res.body.outcome).toBe('credited');
  return c;
}

/** POST /v1/admin/redemption-codes with `body`, expecting 201: the batch and its codes. */
export async function createRedemptionBatch(t: TestApp, body: Body): Promise<Json> {
  const res = await t.http
    .post('/v1/admin/redemption-codes')
    .set(...adminHeaders(t))
    .send(body)
    .expect(201);
  return res.body;
}

/** POST /v1/me/redemptions `{ code }` as the customer of `consoleKey`. */
export const redeem = (t: TestApp, consoleKey: string, code: unknown): Test =>
  t.http
    .post('/v1/me/redemptions')
    .set(...bearer(consoleKey))
    .send({ code });

/** balance = sum of its ledger entries, to the digit, for the account. */
export async function expectLedgerConsistent(t: TestApp, accountId: string): Promise<void> {
  const r = await t.sql.query<{ balance: string; sum: string; last: string | null }>(
    `SELECT (SELECT balance::text FROM accounts WHERE id = $1) AS balance,
            (SELECT coalesce(sum(amount), 0)::text FROM ledger_entries WHERE account_id = $1) AS sum,
            (SELECT balance_after::text FROM ledger_entries WHERE account_id = $1 ORDER BY id DESC LIMIT 1) AS last`,
    [accountId],
  );
  const { balance, sum, last } = r.rows[0];
  expect(new Decimal(balance).eq(sum)).toBe(true);
  expect(new Decimal(balance).eq(last ?? '0')).toBe(true);
}
