import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomUUID } from 'node:crypto';
import {
  adminHeaders,
  balanceOf,
  Body,
  createAccount,
  createToken,
  credit,
  errorFields,
  expectErrorBody,
  fundedAccount,
  gatewayHeaders,
  ISO,
  postEvent,
  postEvents,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const D = (v: Decimal.Value): Decimal => new Decimal(v);
const sum = (values: Decimal.Value[]): Decimal => values.reduce<Decimal>((s, v) => s.plus(v), D(0));

/** A small seeded PRNG, so the load tests are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rnd: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

type UsageEvent = Record<string, unknown> & { requestId: string; tokenId: string; model: string };

const rid = (): string => `req_${randomUUID()}`;

/** The provider's example: gpt-image-2, 89 input and 1145 output tokens. */
const tokensEvent = (tokenId: string, over: Record<string, unknown> = {}): UsageEvent => ({
  requestId: rid(),
  tokenId,
  model: 'gpt-image-2',
  statusCode: 200,
  usage: { inputTokens: 89, outputTokens: 1145 },
  ...over,
});

const flatEvent = (tokenId: string, over: Record<string, unknown> = {}): UsageEvent => ({
  requestId: rid(),
  tokenId,
  model: 'gpt-image-2-all',
  statusCode: 200,
  ...over,
});

const imageEvent = (
  tokenId: string,
  images: number,
  over: Record<string, unknown> = {},
): UsageEvent => ({
  requestId: rid(),
  tokenId,
  model: 'gpt-image-2-vip',
  statusCode: 200,
  images,
  ...over,
});

/**
 * What the seeded catalog charges for a successful event, computed here independently of
 * the service: tokens × USD per 1M ÷ 1,000,000 (text input 8, cached 2, output 30, 100 output
 * tokens per partial image), 0.03 per request, 0.03 per image; times the group ratio.
 */
function expectedCharge(e: UsageEvent, ratio: Decimal.Value): Decimal {
  let subtotal: Decimal;
  if (e.model === 'gpt-image-2') {
    const u = e.usage as {
      inputTokens: number;
      outputTokens: number;
      inputTokensDetails?: { cachedTokens?: number };
    };
    const cached = u.inputTokensDetails?.cachedTokens ?? 0;
    const partials = (e.partialImages as number | undefined) ?? 0;
    subtotal = D(u.inputTokens - cached)
      .times(8)
      .plus(D(cached).times(2))
      .plus(D(u.outputTokens + partials * 100).times(30))
      .div(1_000_000);
  } else if (e.model === 'gpt-image-2-all') {
    subtotal = D('0.03');
  } else if (e.model === 'gpt-image-2-vip') {
    subtotal = D('0.03').times((e.images as number | undefined) ?? 1);
  } else {
    throw new Error(`no expected price for ${e.model}`);
  }
  return subtotal.times(ratio);
}

describe('usage events', () => {
  let t: TestApp;
  /** An account holding `balance` USD with one token in `group` (the default group when omitted). */
  const customer = async (
    name: string,
    opts: { balance?: string; group?: string; spendLimit?: string } = {},
  ) => {
    const account = await fundedAccount(t, name, opts.balance ?? '10.00', 'x');
    const tokenBody: Body = { name: 'usage test' };
    if (opts.group) tokenBody.group = opts.group;
    if (opts.spendLimit) tokenBody.spendLimit = opts.spendLimit;
    const token = await createToken(t, account.id, tokenBody);
    return { account, token };
  };

  const tokenView = async (
    accountId: string,
    tokenId: string,
  ): Promise<Record<string, unknown>> => {
    const res = await t.http
      .get(`/v1/admin/accounts/${accountId}/tokens`)
      .set(...adminHeaders(t))
      .expect(200);
    const found = (res.body.data as Record<string, unknown>[]).find((x) => x.id === tokenId);
    if (!found) throw new Error(`token ${tokenId} not listed`);
    return found;
  };

  const authorize = async (key: string, model: string): Promise<Record<string, unknown>> => {
    const res = await t.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(t))
      .send({ key, model })
      .expect(200);
    return res.body as Record<string, unknown>;
  };

  const usageRow = async (requestId: string) => {
    const r = await t.sql.query<{
      outcome: string;
      reason: string | null;
      charge: string;
      ratio: string;
      group_name: string;
      price_version: number;
      account_id: string;
    }>(
      `SELECT outcome, reason, charge::text AS charge, ratio::text AS ratio, group_name, price_version, account_id
       FROM usage_events WHERE request_id = $1`,
      [requestId],
    );
    return r.rows;
  };

  const usageEntries = async (requestId: string) => {
    const r = await t.sql.query<{ amount: string; account_id: string; balance_after: string }>(
      `SELECT amount::text AS amount, account_id, balance_after::text AS balance_after FROM ledger_entries
       WHERE type = 'usage' AND reference = $1`,
      [requestId],
    );
    return r.rows;
  };

  /** Rows in the tables ingestion writes to: a rejected request must leave all three unchanged. */
  const writtenCounts = async () => {
    const r = await t.sql.query<{ events: number; entries: number; spent: string }>(
      `SELECT (SELECT count(*)::int FROM usage_events) AS events,
              (SELECT count(*)::int FROM ledger_entries) AS entries,
              (SELECT coalesce(sum(spent), 0)::text FROM api_tokens) AS spent`,
    );
    return r.rows[0];
  };

  /**
   * Checks an account's books and returns its balance: accounts.balance equals the sum of its
   * ledger entries to the digit, and ordered by id every balance_after is the previous one
   * plus the entry's amount (the account starts at 0).
   */
  const checkBooks = async (accountId: string): Promise<Decimal> => {
    const acc = await t.sql.query<{ balance: string }>(
      `SELECT balance::text AS balance FROM accounts WHERE id = $1`,
      [accountId],
    );
    const entries = await t.sql.query<{ amount: string; balance_after: string }>(
      `SELECT amount::text AS amount, balance_after::text AS balance_after FROM ledger_entries
       WHERE account_id = $1 ORDER BY id`,
      [accountId],
    );
    let running = D(0);
    const broken: string[] = [];
    entries.rows.forEach((e, i) => {
      running = running.plus(e.amount);
      if (!D(e.balance_after).equals(running))
        broken.push(`#${i}: ${e.balance_after} != ${running.toFixed()}`);
    });
    expect(broken).toEqual([]);
    const balance = D(acc.rows[0].balance);
    expect(balance.toFixed()).toBe(running.toFixed());
    return balance;
  };

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('charging an event', () => {
    it('charges the provider example 0.035062 in the default group and books it in the ledger', async () => {
      const { account, token } = await customer('Provider example');
      const e = tokensEvent(token.id);
      const res = await postEvent(t, e).expect(201);
      expect(res.body).toEqual({
        requestId: e.requestId,
        tokenId: token.id,
        model: 'gpt-image-2',
        outcome: 'charged',
        reason: null,
        charge: '0.035062',
        group: 'default',
        ratio: '1.0',
        priceVersion: 1,
        breakdown: [
          {
            item: 'input_text_tokens',
            quantity: '89',
            unitPrice: '8',
            unit: 'per_1m_tokens',
            amount: '0.000712',
          },
          {
            item: 'output_image_tokens',
            quantity: '1145',
            unitPrice: '30',
            unit: 'per_1m_tokens',
            amount: '0.03435',
          },
        ],
        occurredAt: expect.stringMatching(ISO),
        recordedAt: expect.stringMatching(ISO),
        duplicate: false,
      });

      expect(await balanceOf(t, account.consoleKey)).toBe('9.964938');
      const entries = await usageEntries(e.requestId);
      expect(entries).toHaveLength(1);
      expect(D(entries[0].amount).equals('-0.035062')).toBe(true);
      expect(entries[0].account_id).toBe(account.id);
      expect(D(entries[0].balance_after).equals('9.964938')).toBe(true);
      const rows = await usageRow(e.requestId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        outcome: 'charged',
        reason: null,
        account_id: account.id,
        price_version: 1,
      });
      expect(D(rows[0].charge).equals('0.035062')).toBe(true);
      await checkBooks(account.id);
    });

    it('charges the provider example 0.0420744 in the image2Enterprise group at ratio 1.2', async () => {
      const { account, token } = await customer('Enterprise example', {
        group: 'image2Enterprise',
      });
      const e = tokensEvent(token.id);
      const res = await postEvent(t, e).expect(201);
      expect(res.body).toMatchObject({
        outcome: 'charged',
        charge: '0.0420744',
        group: 'image2Enterprise',
        ratio: '1.2',
        priceVersion: 1,
        duplicate: false,
      });
      // Breakdown amounts are before the group ratio.
      expect(res.body.breakdown).toEqual([
        {
          item: 'input_text_tokens',
          quantity: '89',
          unitPrice: '8',
          unit: 'per_1m_tokens',
          amount: '0.000712',
        },
        {
          item: 'output_image_tokens',
          quantity: '1145',
          unitPrice: '30',
          unit: 'per_1m_tokens',
          amount: '0.03435',
        },
      ]);
      expect(await balanceOf(t, account.consoleKey)).toBe('9.9579256');
      const entries = await usageEntries(e.requestId);
      expect(entries).toHaveLength(1);
      expect(D(entries[0].amount).equals('-0.0420744')).toBe(true);
      const rows = await usageRow(e.requestId);
      expect(rows[0].group_name).toBe('image2Enterprise');
      expect(D(rows[0].ratio).equals('1.2')).toBe(true);
      await checkBooks(account.id);
    });

    it('charges cached tokens at the cached input price', async () => {
      const { account, token } = await customer('Cached');
      const e = tokensEvent(token.id, {
        usage: { inputTokens: 1000, outputTokens: 100, inputTokensDetails: { cachedTokens: 400 } },
      });
      const res = await postEvent(t, e).expect(201);
      // 600 × 8 + 400 × 2 + 100 × 30 = 8600 per 1M
      expect(res.body.charge).toBe('0.0086');
      expect(res.body.breakdown).toEqual([
        {
          item: 'input_text_tokens',
          quantity: '600',
          unitPrice: '8',
          unit: 'per_1m_tokens',
          amount: '0.0048',
        },
        {
          item: 'cached_input_tokens',
          quantity: '400',
          unitPrice: '2',
          unit: 'per_1m_tokens',
          amount: '0.0008',
        },
        {
          item: 'output_image_tokens',
          quantity: '100',
          unitPrice: '30',
          unit: 'per_1m_tokens',
          amount: '0.003',
        },
      ]);
      expect(await balanceOf(t, account.consoleKey)).toBe('9.9914');
    });

    it('splits input into text and image tokens and takes cached tokens from text first, then image', async () => {
      const { token } = await customer('Split');
      const e = tokensEvent(token.id, {
        usage: {
          inputTokens: 500,
          outputTokens: 300,
          inputTokensDetails: { textTokens: 100, imageTokens: 400, cachedTokens: 150 },
          outputTokensDetails: { textTokens: 50, imageTokens: 250 },
        },
      });
      const res = await postEvent(t, e).expect(201);
      // text 100 all cached, image 400 - 50 cached = 350; 350 × 8 + 150 × 2 + 300 × 30 = 12100 per 1M
      expect(res.body.charge).toBe('0.0121');
      expect(res.body.breakdown).toEqual([
        {
          item: 'input_image_tokens',
          quantity: '350',
          unitPrice: '8',
          unit: 'per_1m_tokens',
          amount: '0.0028',
        },
        {
          item: 'cached_input_tokens',
          quantity: '150',
          unitPrice: '2',
          unit: 'per_1m_tokens',
          amount: '0.0003',
        },
        {
          item: 'output_text_tokens',
          quantity: '50',
          unitPrice: '30',
          unit: 'per_1m_tokens',
          amount: '0.0015',
        },
        {
          item: 'output_image_tokens',
          quantity: '250',
          unitPrice: '30',
          unit: 'per_1m_tokens',
          amount: '0.0075',
        },
      ]);
    });

    it('adds 100 output image tokens for each streamed partial image', async () => {
      const { token } = await customer('Partials');
      const e = tokensEvent(token.id, { partialImages: 2 });
      const res = await postEvent(t, e).expect(201);
      // 0.035062 + 200 × 30 / 1M
      expect(res.body.charge).toBe('0.041062');
      expect(res.body.breakdown).toContainEqual({
        item: 'partial_image_output_tokens',
        quantity: '200',
        unitPrice: '30',
        unit: 'per_1m_tokens',
        amount: '0.006',
      });
    });

    it('charges gpt-image-2-all 0.03 per request, 0.036 in image2Enterprise', async () => {
      const plain = await customer('Flat default');
      const ent = await customer('Flat enterprise', { group: 'image2Enterprise' });
      const a = await postEvent(t, flatEvent(plain.token.id)).expect(201);
      const b = await postEvent(t, flatEvent(ent.token.id)).expect(201);
      expect(a.body).toMatchObject({
        outcome: 'charged',
        charge: '0.03',
        ratio: '1.0',
        priceVersion: 1,
      });
      expect(a.body.breakdown).toEqual([
        { item: 'request', quantity: '1', unitPrice: '0.03', unit: 'per_request', amount: '0.03' },
      ]);
      expect(b.body).toMatchObject({ outcome: 'charged', charge: '0.036', ratio: '1.2' });
      expect(await balanceOf(t, plain.account.consoleKey)).toBe('9.97');
      expect(await balanceOf(t, ent.account.consoleKey)).toBe('9.964');
    });

    it('charges gpt-image-2-vip 0.03 per image returned: 3 images cost 0.09', async () => {
      const { account, token } = await customer('Per image');
      const res = await postEvent(t, imageEvent(token.id, 3)).expect(201);
      expect(res.body).toMatchObject({ outcome: 'charged', charge: '0.09', priceVersion: 1 });
      expect(res.body.breakdown).toEqual([
        { item: 'image', quantity: '3', unitPrice: '0.03', unit: 'per_image', amount: '0.09' },
      ]);
      expect(await balanceOf(t, account.consoleKey)).toBe('9.91');
    });

    it('charges one image when a per-image event leaves images out', async () => {
      const { token } = await customer('Default image count');
      const e = imageEvent(token.id, 1);
      delete e.images;
      const res = await postEvent(t, e).expect(201);
      expect(res.body).toMatchObject({ outcome: 'charged', charge: '0.03' });
      expect(res.body.breakdown[0]).toMatchObject({ item: 'image', quantity: '1' });
    });

    it('keeps every digit where floating point would not: 1 in, 3 out at ratio 1.2 is 0.0001176', async () => {
      const { account, token } = await customer('Tiny enterprise', { group: 'image2Enterprise' });
      const res = await postEvent(
        t,
        tokensEvent(token.id, { usage: { inputTokens: 1, outputTokens: 3 } }),
      ).expect(201);
      // (8 + 90) / 1M × 1.2; in binary floating point this is 0.00011759999999999999.
      expect(res.body.charge).toBe('0.0001176');
      expect(await balanceOf(t, account.consoleKey)).toBe('9.9998824');
    });

    it('keeps the occurredAt the gateway sent and stamps recordedAt itself', async () => {
      const { token } = await customer('Occurred');
      const occurredAt = '2026-01-15T10:20:30.000Z';
      const before = Date.now();
      const res = await postEvent(t, flatEvent(token.id, { occurredAt })).expect(201);
      expect(res.body.occurredAt).toBe(occurredAt);
      expect(Date.parse(res.body.recordedAt as string)).toBeGreaterThanOrEqual(before - 5_000);
    });
  });

  describe('skip rules', () => {
    const skipCases: [string, string, (tokenId: string) => UsageEvent][] = [
      [
        'moderated',
        'errorCode moderation_blocked with status 400',
        (id) =>
          tokensEvent(id, { statusCode: 400, errorCode: 'moderation_blocked', usage: undefined }),
      ],
      [
        'moderated',
        'moderated true with status 200 and usage',
        (id) => tokensEvent(id, { moderated: true }),
      ],
      [
        'moderated',
        'moderation even on a 500',
        (id) => flatEvent(id, { statusCode: 500, moderated: true }),
      ],
      ['upstream_error', 'status 500', (id) => tokensEvent(id, { statusCode: 500 })],
      [
        'upstream_error',
        'status 429 on a per-request model',
        (id) => flatEvent(id, { statusCode: 429 }),
      ],
      [
        'timeout',
        'timedOut true with no usage',
        (id) => tokensEvent(id, { timedOut: true, usage: undefined }),
      ],
      ['no_output', '0 images on gpt-image-2-vip', (id) => imageEvent(id, 0)],
      [
        'no_output',
        '0 output tokens on gpt-image-2',
        (id) => tokensEvent(id, { usage: { inputTokens: 89, outputTokens: 0 } }),
      ],
    ];

    it.each(skipCases)(
      'skips as %s for %s: stored with charge 0, no ledger entry',
      async (reason, _label, make) => {
        const { account, token } = await customer(`Skip ${reason}`);
        const e = make(token.id);
        const res = await postEvent(t, e).expect(201);
        expect(res.body).toMatchObject({
          requestId: e.requestId,
          outcome: 'skipped',
          reason,
          charge: '0',
          duplicate: false,
        });
        const rows = await usageRow(e.requestId);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ outcome: 'skipped', reason, account_id: account.id });
        expect(D(rows[0].charge).isZero()).toBe(true);
        expect(await usageEntries(e.requestId)).toEqual([]);
        expect(await balanceOf(t, account.consoleKey)).toBe('10.00');
        expect((await tokenView(account.id, token.id)).spent).toBe('0.00');
      },
    );

    it('still charges a timed-out request that came back with usage', async () => {
      const { token } = await customer('Timed out with usage');
      const res = await postEvent(t, tokensEvent(token.id, { timedOut: true })).expect(201);
      expect(res.body).toMatchObject({ outcome: 'charged', charge: '0.035062' });
    });

    it('replays a skipped event as a duplicate, still uncharged', async () => {
      const { account, token } = await customer('Skip replay');
      const e = tokensEvent(token.id, { statusCode: 502 });
      const first = await postEvent(t, e).expect(201);
      const again = await postEvent(t, e).expect(200);
      expect(again.body).toEqual({ ...first.body, duplicate: true });
      expect(await usageRow(e.requestId)).toHaveLength(1);
      expect(await balanceOf(t, account.consoleKey)).toBe('10.00');
    });
  });

  describe('replays', () => {
    it('answers a replay with 200, the stored outcome and duplicate true, charging nothing more', async () => {
      const { account, token } = await customer('Replay');
      const e = tokensEvent(token.id);
      const first = await postEvent(t, e).expect(201);
      expect(await balanceOf(t, account.consoleKey)).toBe('9.964938');
      const again = await postEvent(t, e).expect(200);
      expect(again.body).toEqual({ ...first.body, duplicate: true });
      expect(await balanceOf(t, account.consoleKey)).toBe('9.964938');
      expect(await usageEntries(e.requestId)).toHaveLength(1);
      expect(await usageRow(e.requestId)).toHaveLength(1);
      expect((await tokenView(account.id, token.id)).spent).toBe('0.035062');
    });

    it('treats the same body with its keys in another order as a replay', async () => {
      const { token } = await customer('Key order');
      const e = tokensEvent(token.id);
      await postEvent(t, e).expect(201);
      const reordered = {
        usage: { outputTokens: 1145, inputTokens: 89 },
        statusCode: 200,
        model: e.model,
        tokenId: e.tokenId,
        requestId: e.requestId,
      };
      const again = await postEvent(t, reordered).expect(200);
      expect(again.body.duplicate).toBe(true);
    });

    it('answers 409 conflict for the same requestId with a different body, changing nothing', async () => {
      const { account, token } = await customer('Conflict');
      const e = tokensEvent(token.id);
      await postEvent(t, e).expect(201);
      const before = await writtenCounts();
      expectErrorBody(
        await postEvent(t, { ...e, usage: { inputTokens: 89, outputTokens: 2000 } }),
        409,
        'conflict',
      );
      expectErrorBody(await postEvent(t, { ...e, statusCode: 500 }), 409, 'conflict');
      expect(await writtenCounts()).toEqual(before);
      expect(await balanceOf(t, account.consoleKey)).toBe('9.964938');
      const rows = await usageRow(e.requestId);
      expect(D(rows[0].charge).equals('0.035062')).toBe(true);
    });

    it('answers 409 when another token reuses a requestId, charging neither account again', async () => {
      const a = await customer('Owner of id');
      const b = await customer('Reuser of id');
      const e = flatEvent(a.token.id);
      await postEvent(t, e).expect(201);
      expectErrorBody(await postEvent(t, { ...e, tokenId: b.token.id }), 409, 'conflict');
      expect(await balanceOf(t, a.account.consoleKey)).toBe('9.97');
      expect(await balanceOf(t, b.account.consoleKey)).toBe('10.00');
    });
  });

  describe('price and ratio changes', () => {
    it('prices events after a price change at the new version; earlier charges keep version 1', async () => {
      // A model of this file's own, so the seeded catalog other tests rely on stays as it is.
      const model = 'usage-spec-image';
      const base = {
        mode: 'tokens',
        inputText: '8',
        inputImage: '8',
        cachedInput: '2',
        outputText: '30',
        outputImage: '30',
        partialImageOutputTokens: 100,
      };
      const v1 = await t.http
        .put(`/v1/admin/models/${model}`)
        .set(...adminHeaders(t))
        .send(base)
        .expect(200);
      expect(v1.body.version).toBe(1);
      const { account, token } = await customer('Price change');

      const before = tokensEvent(token.id, { model });
      const r1 = await postEvent(t, before).expect(201);
      expect(r1.body).toMatchObject({ charge: '0.035062', priceVersion: 1 });

      const v2 = await t.http
        .put(`/v1/admin/models/${model}`)
        .set(...adminHeaders(t))
        .send({ ...base, inputText: '10', outputImage: '40' })
        .expect(200);
      expect(v2.body.version).toBe(2);
      // A version that starts in an hour does not apply yet.
      await t.http
        .put(`/v1/admin/models/${model}`)
        .set(...adminHeaders(t))
        .send({
          ...base,
          outputImage: '1000',
          effectiveFrom: new Date(Date.now() + 3_600_000).toISOString(),
        })
        .expect(200);

      const after = tokensEvent(token.id, { model });
      const r2 = await postEvent(t, after).expect(201);
      // 89 × 10 + 1145 × 40 = 46690 per 1M
      expect(r2.body).toMatchObject({ charge: '0.04669', priceVersion: 2 });
      expect(r2.body.breakdown).toEqual([
        {
          item: 'input_text_tokens',
          quantity: '89',
          unitPrice: '10',
          unit: 'per_1m_tokens',
          amount: '0.00089',
        },
        {
          item: 'output_image_tokens',
          quantity: '1145',
          unitPrice: '40',
          unit: 'per_1m_tokens',
          amount: '0.0458',
        },
      ]);

      // The earlier charge, stored and replayed, keeps its version and amount.
      const replay = await postEvent(t, before).expect(200);
      expect(replay.body).toMatchObject({ charge: '0.035062', priceVersion: 1, duplicate: true });
      const rows = await usageRow(before.requestId);
      expect(rows[0].price_version).toBe(1);
      expect(D(rows[0].charge).equals('0.035062')).toBe(true);
      expect(
        D(await balanceOf(t, account.consoleKey)).equals(D(10).minus('0.035062').minus('0.04669')),
      ).toBe(true);
      await checkBooks(account.id);
    });

    it('refuses with 400 naming model an event for a model whose only price starts later', async () => {
      await t.http
        .put('/v1/admin/models/usage-spec-future')
        .set(...adminHeaders(t))
        .send({
          mode: 'per_request',
          perRequest: '0.05',
          effectiveFrom: new Date(Date.now() + 3_600_000).toISOString(),
        })
        .expect(200);
      const { token } = await customer('Future price');
      const before = await writtenCounts();
      const res = await postEvent(t, flatEvent(token.id, { model: 'usage-spec-future' }));
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toContain('model');
      expect(await writtenCounts()).toEqual(before);
    });

    it('applies a group ratio change only to events ingested after it', async () => {
      const { account, token } = await customer('Ratio change');
      const before = flatEvent(token.id);
      const r1 = await postEvent(t, before).expect(201);
      expect(r1.body).toMatchObject({ charge: '0.03', ratio: '1.0', group: 'default' });
      try {
        await t.http
          .patch('/v1/admin/groups/default')
          .set(...adminHeaders(t))
          .send({ ratio: '2' })
          .expect(200);
        const after = flatEvent(token.id);
        const r2 = await postEvent(t, after).expect(201);
        expect(D(r2.body.ratio as string).equals(2)).toBe(true);
        expect(r2.body.charge).toBe('0.06');

        const replay = await postEvent(t, before).expect(200);
        expect(replay.body).toMatchObject({ charge: '0.03', ratio: '1.0', duplicate: true });
        const rows = await usageRow(before.requestId);
        expect(D(rows[0].ratio).equals('1.0')).toBe(true);
        expect(D(rows[0].charge).equals('0.03')).toBe(true);
        expect(await balanceOf(t, account.consoleKey)).toBe('9.91');
      } finally {
        // The rest of this file prices the default group at 1.0.
        await t.http
          .patch('/v1/admin/groups/default')
          .set(...adminHeaders(t))
          .send({ ratio: '1.0' })
          .expect(200);
      }
    });
  });

  describe('balance, token spend and authorize', () => {
    it('books usage below zero and authorize then refuses with insufficient_balance', async () => {
      const { account, token } = await customer('Overdraft', { balance: '0.01' });
      expect(await authorize(token.key, 'gpt-image-2-vip')).toMatchObject({ allowed: true });
      const e = imageEvent(token.id, 1);
      const res = await postEvent(t, e).expect(201);
      expect(res.body).toMatchObject({ outcome: 'charged', charge: '0.03' });
      expect(await balanceOf(t, account.consoleKey)).toBe('-0.02');
      const entries = await usageEntries(e.requestId);
      expect(D(entries[0].balance_after).equals('-0.02')).toBe(true);
      expect(await authorize(token.key, 'gpt-image-2-vip')).toEqual({
        allowed: false,
        reason: 'insufficient_balance',
      });
      await checkBooks(account.id);
    });

    it("adds each charge to the token's spent and sets lastUsedAt", async () => {
      const { account, token } = await customer('Spender');
      const fresh = await tokenView(account.id, token.id);
      expect(fresh.spent).toBe('0.00');
      expect(fresh.lastUsedAt).toBeNull();
      const t0 = Date.now();
      await postEvent(t, tokensEvent(token.id)).expect(201);
      const once = await tokenView(account.id, token.id);
      expect(once.spent).toBe('0.035062');
      expect(once.lastUsedAt).toMatch(ISO);
      expect(Date.parse(once.lastUsedAt as string)).toBeGreaterThanOrEqual(t0 - 5_000);
      await postEvent(t, flatEvent(token.id)).expect(201);
      expect((await tokenView(account.id, token.id)).spent).toBe('0.065062');
    });

    it('refuses with spend_limit_reached once the token has spent its limit', async () => {
      const { account, token } = await customer('Limited', { spendLimit: '0.05' });
      await postEvent(t, flatEvent(token.id)).expect(201);
      expect((await tokenView(account.id, token.id)).spent).toBe('0.03');
      expect(await authorize(token.key, 'gpt-image-2-all')).toMatchObject({ allowed: true });
      // Usage already done upstream is booked even past the limit.
      await postEvent(t, flatEvent(token.id)).expect(201);
      expect((await tokenView(account.id, token.id)).spent).toBe('0.06');
      expect(await authorize(token.key, 'gpt-image-2-all')).toEqual({
        allowed: false,
        reason: 'spend_limit_reached',
      });
    });
  });

  describe('bad input', () => {
    let tokenId: string;
    let consoleKey: string;
    beforeAll(async () => {
      const c = await customer('Bad input');
      tokenId = c.token.id;
      consoleKey = c.account.consoleKey;
    });

    const badCases: [string, (id: string) => unknown, string[]][] = [
      [
        'a negative inputTokens',
        (id) => tokensEvent(id, { usage: { inputTokens: -1, outputTokens: 10 } }),
        ['usage.inputTokens'],
      ],
      [
        'a fractional outputTokens',
        (id) => tokensEvent(id, { usage: { inputTokens: 1, outputTokens: 10.5 } }),
        ['usage.outputTokens'],
      ],
      [
        'token counts as strings',
        (id) => tokensEvent(id, { usage: { inputTokens: '89', outputTokens: '1145' } }),
        ['usage.inputTokens', 'usage.outputTokens'],
      ],
      ['statusCode 99', (id) => tokensEvent(id, { statusCode: 99 }), ['statusCode']],
      ['statusCode as a string', (id) => tokensEvent(id, { statusCode: '200' }), ['statusCode']],
      [
        'a missing requestId',
        (id) => ({ ...tokensEvent(id), requestId: undefined }),
        ['requestId'],
      ],
      ['an empty requestId', (id) => tokensEvent(id, { requestId: '' }), ['requestId']],
      ['a non-uuid tokenId', () => tokensEvent('not-a-uuid'), ['tokenId']],
      ['an unknown field', (id) => tokensEvent(id, { discount: '0.5' }), ['discount']],
      [
        'an unknown field inside usage',
        (id) => tokensEvent(id, { usage: { inputTokens: 1, outputTokens: 1, bonus: 1 } }),
        ['usage.bonus'],
      ],
      [
        'a huge number 1e13',
        (id) => tokensEvent(id, { usage: { inputTokens: 1e13, outputTokens: 1 } }),
        ['usage.inputTokens'],
      ],
      ['usage as a number', (id) => tokensEvent(id, { usage: 5 }), ['usage']],
      ['usage as a string', (id) => tokensEvent(id, { usage: 'lots' }), ['usage']],
      [
        'usage as an array',
        (id) => tokensEvent(id, { usage: [{ inputTokens: 1, outputTokens: 1 }] }),
        ['usage'],
      ],
      [
        'fractional partialImages',
        (id) => tokensEvent(id, { partialImages: 1.5 }),
        ['partialImages'],
      ],
      ['negative images', (id) => imageEvent(id, -1), ['images']],
      ['moderated as a string', (id) => tokensEvent(id, { moderated: 'yes' }), ['moderated']],
      [
        'an occurredAt that is not a time',
        (id) => flatEvent(id, { occurredAt: 'yesterday' }),
        ['occurredAt'],
      ],
      ['a tokens model without usage', (id) => tokensEvent(id, { usage: undefined }), ['usage']],
      ['an unpriced model', (id) => flatEvent(id, { model: 'dall-e-9' }), ['model']],
      [
        'more cached tokens than input tokens',
        (id) =>
          tokensEvent(id, {
            usage: { inputTokens: 10, outputTokens: 10, inputTokensDetails: { cachedTokens: 11 } },
          }),
        ['usage.inputTokensDetails.cachedTokens'],
      ],
    ];

    it.each(badCases)(
      'answers 400 naming the field for %s, writing nothing',
      async (_label, make, fields) => {
        const before = await writtenCounts();
        const res = await postEvent(t, make(tokenId));
        expectErrorBody(res, 400, 'validation_failed');
        for (const f of fields) expect(errorFields(res)).toContain(f);
        expect(await writtenCounts()).toEqual(before);
        expect(await balanceOf(t, consoleKey)).toBe('10.00');
      },
    );

    // The contract asks for a 400 in its error shape; it names no code for unparseable JSON.
    it('answers 400 for a body that is not JSON, writing nothing', async () => {
      const before = await writtenCounts();
      const res = await t.http
        .post('/v1/usage-events')
        .set(...gatewayHeaders(t))
        .set('Content-Type', 'application/json')
        .send('{"requestId": "req_1", "tokenId":');
      expect(res.status).toBe(400);
      expect(Object.keys(res.body)).toEqual(['error']);
      expect(res.body.error.code).toEqual(expect.any(String));
      expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
      expect(await writtenCounts()).toEqual(before);
    });

    it.each([
      ['a JSON array', '[{"requestId": "req_1"}]'],
      ['a JSON string', '"event"'],
    ])('answers 400 for a body that is %s, writing nothing', async (_label, body) => {
      const before = await writtenCounts();
      const res = await t.http
        .post('/v1/usage-events')
        .set(...gatewayHeaders(t))
        .set('Content-Type', 'application/json')
        .send(body);
      expect(res.status).toBe(400);
      expect(Object.keys(res.body)).toEqual(['error']);
      expect(await writtenCounts()).toEqual(before);
    });

    it('answers 404 for an unknown token, writing nothing', async () => {
      const before = await writtenCounts();
      expectErrorBody(await postEvent(t, tokensEvent(randomUUID())), 404, 'not_found');
      expect(await writtenCounts()).toEqual(before);
    });

    it('refuses usage events from a key that is not the gateway key', async () => {
      const before = await writtenCounts();
      const e = flatEvent(tokenId);
      expect((await t.http.post('/v1/usage-events').send(e)).status).toBe(401);
      expect(
        (
          await t.http
            .post('/v1/usage-events')
            .set(...adminHeaders(t))
            .send(e)
        ).status,
      ).toBe(403);
      expect(
        (
          await t.http
            .post('/v1/usage-events')
            .set(...bearer(consoleKey))
            .send(e)
        ).status,
      ).toBe(403);
      expect(await writtenCounts()).toEqual(before);
    });
  });

  describe('batch', () => {
    it('answers each event in input order: charged, skipped, duplicate and rejected', async () => {
      const { account, token } = await customer('Batch mix');
      const earlier = tokensEvent(token.id);
      await postEvent(t, earlier).expect(201);
      const charged = flatEvent(token.id);
      const skipped = tokensEvent(token.id, { statusCode: 500 });
      const tokens = tokensEvent(token.id, { partialImages: 1 });
      const unknownToken = flatEvent(randomUUID());
      const unpriced = flatEvent(token.id, { model: 'dall-e-9' });
      const invalid = tokensEvent(token.id, { usage: { inputTokens: -5, outputTokens: 1 } });
      const events: unknown[] = [
        charged,
        skipped,
        charged, // the same requestId twice in one batch
        earlier, // ingested before
        unknownToken,
        unpriced,
        invalid,
        42, // not an object
        { ...charged, statusCode: 503 }, // same id as an event in this batch, different body
        { ...earlier, model: 'gpt-image-2-all', usage: undefined }, // same id as a stored event, different body
        tokens,
        null,
      ];
      const res = await postEvents(t, events).expect(200);
      const results = res.body.results as Record<string, unknown>[];
      expect(results).toHaveLength(events.length);
      expect(results[0]).toEqual({
        requestId: charged.requestId,
        outcome: 'charged',
        charge: '0.03',
      });
      expect(results[1]).toEqual({
        requestId: skipped.requestId,
        outcome: 'skipped',
        charge: '0',
        reason: 'upstream_error',
      });
      expect(results[2]).toMatchObject({
        requestId: charged.requestId,
        outcome: 'duplicate',
        charge: '0.03',
      });
      expect(results[3]).toMatchObject({
        requestId: earlier.requestId,
        outcome: 'duplicate',
        charge: '0.035062',
      });
      expect(results[4]).toMatchObject({
        requestId: unknownToken.requestId,
        outcome: 'rejected',
        error: { code: 'not_found' },
      });
      expect(results[5]).toMatchObject({
        requestId: unpriced.requestId,
        outcome: 'rejected',
        error: { code: 'validation_failed' },
      });
      expect(JSON.stringify(results[5].error)).toContain('model');
      expect(results[6]).toMatchObject({
        requestId: invalid.requestId,
        outcome: 'rejected',
        error: { code: 'validation_failed' },
      });
      expect(
        (results[6].error as { details: { field: string }[] }).details.map((d) => d.field),
      ).toContain('usage.inputTokens');
      expect(results[7]).toMatchObject({
        requestId: null,
        outcome: 'rejected',
        error: { code: 'validation_failed' },
      });
      expect(results[8]).toMatchObject({
        requestId: charged.requestId,
        outcome: 'rejected',
        error: { code: 'conflict' },
      });
      expect(results[9]).toMatchObject({
        requestId: earlier.requestId,
        outcome: 'rejected',
        error: { code: 'conflict' },
      });
      expect(results[10]).toEqual({
        requestId: tokens.requestId,
        outcome: 'charged',
        charge: '0.038062',
      });
      expect(results[11]).toMatchObject({
        requestId: null,
        outcome: 'rejected',
        error: { code: 'validation_failed' },
      });
      for (const r of results) {
        if (r.outcome !== 'rejected') expect(r).not.toHaveProperty('error');
      }

      // Each valid event charged exactly once; the rejected ones wrote nothing.
      for (const e of [charged, tokens, earlier])
        expect(await usageEntries(e.requestId)).toHaveLength(1);
      expect(await usageEntries(skipped.requestId)).toHaveLength(0);
      expect(await usageRow(skipped.requestId)).toHaveLength(1);
      for (const e of [unknownToken, unpriced, invalid])
        expect(await usageRow(e.requestId)).toHaveLength(0);
      const stored = await usageRow(charged.requestId);
      expect(stored).toHaveLength(1);
      expect(D(stored[0].charge).equals('0.03')).toBe(true);
      const expected = D(10).minus('0.035062').minus('0.03').minus('0.038062');
      expect(D(await balanceOf(t, account.consoleKey)).equals(expected)).toBe(true);
      expect((await checkBooks(account.id)).equals(expected)).toBe(true);

      // The whole batch again: nothing more is charged, every valid event is a duplicate.
      const before = await writtenCounts();
      const again = await postEvents(t, events).expect(200);
      const outcomes = (again.body.results as { outcome: string }[]).map((r) => r.outcome);
      expect(outcomes).toEqual([
        'duplicate',
        'duplicate',
        'duplicate',
        'duplicate',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'duplicate',
        'rejected',
      ]);
      expect(again.body.results[1]).toMatchObject({
        outcome: 'duplicate',
        charge: '0',
        reason: 'upstream_error',
      });
      expect(await writtenCounts()).toEqual(before);
      expect(D(await balanceOf(t, account.consoleKey)).equals(expected)).toBe(true);
    });

    it('rejects only the bad event when every other event in the batch is fine', async () => {
      const { account, token } = await customer('Batch one bad');
      const good = [flatEvent(token.id), imageEvent(token.id, 2), tokensEvent(token.id)];
      const bad = tokensEvent(token.id, {
        usage: { inputTokens: 1, outputTokens: 1 },
        surprise: true,
      });
      const res = await postEvents(t, [good[0], bad, good[1], good[2]]).expect(200);
      expect((res.body.results as { outcome: string }[]).map((r) => r.outcome)).toEqual([
        'charged',
        'rejected',
        'charged',
        'charged',
      ]);
      expect(res.body.results[1].error.details).toContainEqual({
        field: 'surprise',
        message: expect.any(String),
      });
      const total = sum(good.map((e) => expectedCharge(e, 1)));
      expect(D(await balanceOf(t, account.consoleKey)).equals(D(10).minus(total))).toBe(true);
    });

    it('accepts 1000 events and charges each once', async () => {
      const { account, token } = await customer('Batch 1000', { balance: '100.00' });
      const events = Array.from({ length: 1000 }, () => flatEvent(token.id));
      const res = await postEvents(t, events).expect(200);
      const results = res.body.results as { requestId: string; outcome: string; charge: string }[];
      expect(results).toHaveLength(1000);
      expect(results.map((r) => r.requestId)).toEqual(events.map((e) => e.requestId));
      expect(results.every((r) => r.outcome === 'charged' && r.charge === '0.03')).toBe(true);
      const n = await t.sql.query<{ events: number; entries: number }>(
        `SELECT (SELECT count(*)::int FROM usage_events WHERE account_id = $1) AS events,
                (SELECT count(*)::int FROM ledger_entries WHERE account_id = $1 AND type = 'usage') AS entries`,
        [account.id],
      );
      expect(n.rows[0]).toEqual({ events: 1000, entries: 1000 });
      expect(await balanceOf(t, account.consoleKey)).toBe('70.00');
      await checkBooks(account.id);
    });

    it.each([
      ['1001 events', { events: Array.from({ length: 1001 }, () => flatEvent(randomUUID())) }],
      ['no events', { events: [] }],
      ['events missing', {}],
      ['events not an array', { events: { a: 1 } }],
    ])('answers 400 naming events for %s, writing nothing', async (_label, body) => {
      const before = await writtenCounts();
      const res = await t.http
        .post('/v1/usage-events/batch')
        .set(...gatewayHeaders(t))
        .send(body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toContain('events');
      expect(await writtenCounts()).toEqual(before);
    });

    it('writes nothing for a batch of 1001 valid events', async () => {
      const { account, token } = await customer('Batch 1001');
      const before = await writtenCounts();
      const res = await postEvents(
        t,
        Array.from({ length: 1001 }, () => flatEvent(token.id)),
      );
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['events']);
      expect(await writtenCounts()).toEqual(before);
      expect(await balanceOf(t, account.consoleKey)).toBe('10.00');
    });
  });

  describe('reliability', () => {
    // Protects the race of concurrent deliveries of one event: each copy could see "not stored
    // yet" and charge; the unique request id must let exactly one through.
    it('charges an event posted 50 times at once exactly once: one 201 and 49 duplicates', async () => {
      const { account, token } = await customer('Stampede');
      const e = tokensEvent(token.id);
      const results = await Promise.all(Array.from({ length: 50 }, () => postEvent(t, e)));
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(49);
      const created = results.find((r) => r.status === 201);
      expect(created?.body.duplicate).toBe(false);
      for (const r of results.filter((x) => x.status === 200)) {
        expect(r.body).toEqual({ ...created?.body, duplicate: true });
      }
      expect(await usageEntries(e.requestId)).toHaveLength(1);
      expect(await usageRow(e.requestId)).toHaveLength(1);
      expect(await balanceOf(t, account.consoleKey)).toBe('9.964938');
      expect((await tokenView(account.id, token.id)).spent).toBe('0.035062');
      await checkBooks(account.id);
    });

    // Protects the race between a single post and batches carrying the same event: they go
    // through different paths (group commit vs one batch transaction) but share one unique key.
    it('charges once an event delivered at once as single posts and inside batches', async () => {
      const { account, token } = await customer('Mixed paths');
      const e = flatEvent(token.id);
      const results = await Promise.all([
        ...Array.from({ length: 10 }, () => postEvent(t, e)),
        ...Array.from({ length: 5 }, () => postEvents(t, [e, flatEvent(token.id)])),
      ]);
      const singles = results.slice(0, 10);
      const batches = results.slice(10);
      for (const r of singles) expect([200, 201]).toContain(r.status);
      for (const r of batches) expect(r.status).toBe(200);
      const firsts =
        singles.filter((r) => r.status === 201).length +
        batches.filter((r) => r.body.results[0].outcome === 'charged').length;
      expect(firsts).toBe(1);
      expect(await usageEntries(e.requestId)).toHaveLength(1);
      // The event once plus the five distinct companions.
      expect(
        D(await balanceOf(t, account.consoleKey)).equals(D(10).minus(D('0.03').times(6))),
      ).toBe(true);
      await checkBooks(account.id);
    });

    // Protects the lost-update race on one hot account: concurrent transactions must each add
    // their charge to the balance the previous one left, and write balance_after in lock order.
    it('keeps the balance equal to the sum of the ledger under 200 concurrent events on one account', async () => {
      const rnd = prng(20260101);
      const account = await createAccount(t, 'Hot account');
      await credit(t, account.id, '100.00', 'x');
      const tokA = await createToken(t, account.id, { name: 'default' });
      const tokB = await createToken(t, account.id, {
        name: 'enterprise',
        group: 'image2Enterprise',
      });
      const ratioOf = new Map([
        [tokA.id, '1.0'],
        [tokB.id, '1.2'],
      ]);
      const events: UsageEvent[] = Array.from({ length: 200 }, () => {
        const tokenId = rnd() < 0.5 ? tokA.id : tokB.id;
        const kind = rnd();
        if (kind < 0.6) {
          return tokensEvent(tokenId, {
            usage: {
              inputTokens: Math.floor(rnd() * 5000),
              outputTokens: 1 + Math.floor(rnd() * 5000),
            },
            partialImages: Math.floor(rnd() * 3),
          });
        }
        if (kind < 0.8) return flatEvent(tokenId);
        return imageEvent(tokenId, 1 + Math.floor(rnd() * 4));
      });
      // 170 single posts and three batches of 10, all at once.
      const singles = events.slice(0, 170);
      const batches = [events.slice(170, 180), events.slice(180, 190), events.slice(190, 200)];
      const [singleRes, batchRes] = await Promise.all([
        Promise.all(singles.map((e) => postEvent(t, e))),
        Promise.all(batches.map((b) => postEvents(t, b))),
      ]);

      const charges = new Map<string, string>();
      singleRes.forEach((r, i) => {
        expect(r.status).toBe(201);
        charges.set(singles[i].requestId, r.body.charge as string);
      });
      batchRes.forEach((r, k) => {
        expect(r.status).toBe(200);
        (r.body.results as { outcome: string; charge: string }[]).forEach((x, i) => {
          expect(x.outcome).toBe('charged');
          charges.set(batches[k][i].requestId, x.charge);
        });
      });
      expect(charges.size).toBe(200);
      for (const e of events) {
        expect(
          D(charges.get(e.requestId) ?? 'NaN').equals(
            expectedCharge(e, ratioOf.get(e.tokenId) ?? 'NaN'),
          ),
        ).toBe(true);
      }
      const total = sum(events.map((e) => expectedCharge(e, ratioOf.get(e.tokenId) ?? 'NaN')));
      const expected = D(100).minus(total);
      expect(D(await balanceOf(t, account.consoleKey)).equals(expected)).toBe(true);
      expect((await checkBooks(account.id)).equals(expected)).toBe(true);
      const n = await t.sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1 AND type = 'usage'`,
        [account.id],
      );
      expect(n.rows[0].n).toBe(200);
      const spent = D((await tokenView(account.id, tokA.id)).spent as string).plus(
        (await tokenView(account.id, tokB.id)).spent as string,
      );
      expect(spent.equals(total)).toBe(true);
    });

    // Protects the race of concurrent retries of one batch: every transaction inserts the same
    // request ids; the unique key must let each event through once, whichever batch wins it.
    it('charges each event once when the same batch is posted 5 times at once', async () => {
      const { account, token } = await customer('Batch stampede');
      const events = [
        ...Array.from({ length: 20 }, () => flatEvent(token.id)),
        ...Array.from({ length: 10 }, () => tokensEvent(token.id)),
        tokensEvent(token.id, { statusCode: 500 }),
      ];
      const results = await Promise.all(Array.from({ length: 5 }, () => postEvents(t, events)));
      for (const r of results) expect(r.status).toBe(200);
      events.forEach((e, i) => {
        const outcomes = results.map((r) => (r.body.results as { outcome: string }[])[i].outcome);
        const first = i === events.length - 1 ? 'skipped' : 'charged';
        expect(outcomes.filter((o) => o === first)).toHaveLength(1);
        expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(4);
      });
      const entries = await t.sql.query<{ reference: string; n: number }>(
        `SELECT reference, count(*)::int AS n FROM ledger_entries WHERE account_id = $1 AND type = 'usage' GROUP BY reference`,
        [account.id],
      );
      expect(entries.rows).toHaveLength(30);
      expect(entries.rows.every((r) => r.n === 1)).toBe(true);
      const total = sum(events.slice(0, 30).map((e) => expectedCharge(e, 1)));
      expect(D(await balanceOf(t, account.consoleKey)).equals(D(10).minus(total))).toBe(true);
      await checkBooks(account.id);
    });

    // Protects the race of a gateway re-sending the same events re-batched in another order:
    // transactions claiming the same request ids in different orders must not deadlock into a
    // failure, and each event is still charged once.
    it('charges each event once when the same events arrive at once in batches of different orders', async () => {
      const rnd = prng(777);
      const { account, token } = await customer('Reordered batches');
      const events = Array.from({ length: 100 }, () => flatEvent(token.id));
      const orders = Array.from({ length: 5 }, () => shuffle(events, rnd));
      const results = await Promise.all(orders.map((b) => postEvents(t, b)));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      const firsts = new Map<string, number>();
      results.forEach((r) => {
        for (const x of r.body.results as { requestId: string; outcome: string }[]) {
          expect(['charged', 'duplicate']).toContain(x.outcome);
          if (x.outcome === 'charged') firsts.set(x.requestId, (firsts.get(x.requestId) ?? 0) + 1);
        }
      });
      expect(firsts.size).toBe(100);
      expect([...firsts.values()].every((n) => n === 1)).toBe(true);
      expect(await balanceOf(t, account.consoleKey)).toBe('7.00');
      await checkBooks(account.id);
    });

    // Protects against deadlocks between transactions that touch several accounts in different
    // orders (group commit and batches): locks must be taken in one order, so all succeed.
    it('ingests concurrent events across 10 accounts in random order without a failure', async () => {
      const rnd = prng(424242);
      const customers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => customer(`Spread ${i}`)),
      );
      const events = shuffle(
        customers.flatMap((c) =>
          Array.from({ length: 20 }, (_, k) =>
            k % 3 === 0
              ? flatEvent(c.token.id)
              : tokensEvent(c.token.id, {
                  usage: {
                    inputTokens: Math.floor(rnd() * 2000),
                    outputTokens: 1 + Math.floor(rnd() * 2000),
                  },
                }),
          ),
        ),
        rnd,
      );
      // Half as single posts, the rest in batches of 20 that each span many accounts.
      const singles = events.slice(0, 100);
      const batches = Array.from({ length: 5 }, (_, k) => events.slice(100 + k * 20, 120 + k * 20));
      const requests = shuffle(
        [
          ...singles.map((e) => () => postEvent(t, e)),
          ...batches.map((b) => () => postEvents(t, b)),
        ],
        rnd,
      );
      const results = await Promise.all(requests.map((send) => send()));
      const outcomes = new Map<string, string>();
      for (const r of results) {
        if (Array.isArray(r.body.results)) {
          expect(r.status).toBe(200);
          for (const x of r.body.results as { requestId: string; outcome: string }[])
            outcomes.set(x.requestId, x.outcome);
        } else {
          expect(r.status).toBe(201);
          outcomes.set(r.body.requestId as string, r.body.outcome as string);
        }
      }
      expect(outcomes.size).toBe(200);
      expect([...outcomes.values()].every((o) => o === 'charged')).toBe(true);
      for (const c of customers) {
        const mine = events.filter((e) => e.tokenId === c.token.id);
        const expected = D(10).minus(sum(mine.map((e) => expectedCharge(e, 1))));
        expect(D(await balanceOf(t, c.account.consoleKey)).equals(expected)).toBe(true);
        expect((await checkBooks(c.account.id)).equals(expected)).toBe(true);
      }
    });
  });
});
