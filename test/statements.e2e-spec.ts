import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Decimal } from 'decimal.js';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { createAccount, createToken, credit, Json, postEvents } from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const D = (v: Decimal.Value): Decimal => new Decimal(v);
const sum = (values: Decimal.Value[]): Decimal => values.reduce<Decimal>((s, v) => s.plus(v), D(0));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CSV_COLUMNS = [
  'request_id',
  'token_id',
  'token_name',
  'model',
  'outcome',
  'reason',
  'charge',
  'group',
  'ratio',
  'price_version',
  'input_tokens',
  'output_tokens',
  'images',
  'occurred_at',
  'recorded_at',
];

/** RFC 4180: quoted fields may hold commas, CR/LF and doubled quotes; records end with CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

/** The contract's error body, naming `fields`. */
function expectInvalid(res: Response, fields: string[]): void {
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('validation_failed');
  const named = [
    ...new Set((res.body.error.details as { field: string }[]).map((d) => d.field)),
  ].sort();
  expect(named).toEqual([...fields].sort());
}

const monthOf = (iso: string): string => iso.slice(0, 7);
function previousMonth(period: string): string {
  const [y, m] = period.split('-').map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}
function nextMonth(period: string): string {
  const [y, m] = period.split('-').map(Number);
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

describe('statements and usage views', () => {
  let t: TestApp;

  interface Customer {
    id: string;
    key: string;
    tokens: { id: string; name: string }[];
    /** requestId → charge as the ingestion answered it. */
    charges: Map<string, string>;
    skipped: Map<string, string>;
    adjustments: string[];
    /** Batches as posted: each went in one transaction, so it shares one recordedAt. */
    batches: string[][];
  }

  const createCustomer = async (
    name: string,
    tokens: { name: string; group?: string }[],
  ): Promise<Customer> => {
    const acc = await createAccount(t, name);
    const c: Customer = {
      id: acc.id,
      key: acc.consoleKey,
      tokens: [],
      charges: new Map(),
      skipped: new Map(),
      adjustments: [],
      batches: [],
    };
    for (const tk of tokens) {
      const token = await createToken(t, c.id, tk);
      c.tokens.push({ id: token.id, name: token.name });
    }
    return c;
  };

  const adjust = async (c: Customer, amount: string): Promise<Json> => {
    const adjustment = await credit(t, c.id, amount, `statement test ${amount}`);
    c.adjustments.push(amount);
    return adjustment;
  };

  const postBatch = async (c: Customer, events: Json[]): Promise<void> => {
    const withIds = events.map((e) => ({
      requestId: `req_${randomUUID()}`,
      statusCode: 200,
      ...e,
    }));
    const res = await postEvents(t, withIds).expect(200);
    (res.body.results as Json[]).forEach((r, i) => {
      if (r.outcome === 'charged') c.charges.set(r.requestId, r.charge);
      else if (r.outcome === 'skipped') c.skipped.set(r.requestId, r.reason);
      else throw new Error(`event ${i} was ${JSON.stringify(r)}`);
    });
    c.batches.push(withIds.map((e) => e.requestId));
  };

  const get = (path: string, key: string) => t.http.get(path).set(...bearer(key));
  const me = (c: Customer, path: string) => get(`/v1/me${path}`, c.key);
  const asAdmin = (c: Customer, path: string) =>
    get(`/v1/admin/accounts/${c.id}${path}`, t.adminKey);

  /** Every page of a list, following nextCursor. */
  const allPages = async (fetch: (cursor: string | null) => Promise<Response>): Promise<Json[]> => {
    const out: Json[] = [];
    let cursor: string | null = null;
    for (let n = 0; n < 100; n++) {
      const res = await fetch(cursor);
      expect(res.status).toBe(200);
      out.push(...(res.body.data as Json[]));
      cursor = res.body.nextCursor;
      if (cursor === null) return out;
    }
    throw new Error('too many pages');
  };

  const expectReconciles = (s: Json): void => {
    const expected = D(s.openingBalance)
      .plus(s.topUps.credit)
      .minus(s.usage.charge)
      .minus(s.refunds)
      .plus(s.adjustments);
    expect(expected.toFixed()).toBe(D(s.closingBalance).toFixed());
  };

  let a: Customer;
  let b: Customer;
  let period: string;
  const tokenEvents = (c: Customer, i: number) => c.tokens[i].id;

  beforeAll(async () => {
    t = await createTestApp();
    a = await createCustomer('Statement A', [
      { name: 'production' },
      // Quotes and a comma test CSV quoting; the leading = tests formula neutralising.
      { name: '=nightly, "batch"', group: 'image2Enterprise' },
    ]);
    b = await createCustomer('Statement B', [{ name: 'b-main' }]);
    const credit = await adjust(a, '50.00');
    period = monthOf(credit.createdAt as string);
    await adjust(b, '5.00');

    const [a1, a2] = [tokenEvents(a, 0), tokenEvents(a, 1)];
    await postBatch(a, [
      { tokenId: a1, model: 'gpt-image-2', usage: { inputTokens: 89, outputTokens: 1145 } },
      {
        tokenId: a1,
        model: 'gpt-image-2',
        usage: { inputTokens: 1234, outputTokens: 4567, inputTokensDetails: { cachedTokens: 200 } },
      },
      { tokenId: a2, model: 'gpt-image-2', usage: { inputTokens: 7, outputTokens: 13 } },
      { tokenId: a2, model: 'gpt-image-2-all' },
      { tokenId: a1, model: 'gpt-image-2-vip', images: 3 },
    ]);
    await sleep(5); // the next batch is booked at a later millisecond
    await postBatch(a, [
      { tokenId: a1, model: 'gpt-image-2-all', statusCode: 500 },
      { tokenId: a2, model: 'gpt-image-2-vip', images: 1, errorCode: 'moderation_blocked' },
      { tokenId: a1, model: 'gpt-image-2-vip', images: 0 },
      { tokenId: a2, model: 'gpt-image-2-all' },
    ]);
    await adjust(a, '-1.2345678901');
    await adjust(a, '2.5');
    await postBatch(b, [
      { tokenId: tokenEvents(b, 0), model: 'gpt-image-2-all' },
      { tokenId: tokenEvents(b, 0), model: 'gpt-image-2-all', timedOut: true },
    ]);
  });

  afterAll(async () => {
    await t.close();
  });

  const eventCount = (c: Customer) => c.charges.size + c.skipped.size;
  const totalCharge = (c: Customer) => sum([...c.charges.values()]);

  describe('monthly statement', () => {
    it('reconciles a month of usage and adjustments to the last digit and closes at the balance', async () => {
      const s = (await me(a, `/statements/${period}`).expect(200)).body;
      const balance = (await me(a, '').expect(200)).body.balance as string;
      const charge = totalCharge(a);
      expect(s).toMatchObject({
        period,
        currency: 'USD',
        openingBalance: '0.00',
        topUps: { count: 0, credit: '0.00', cashPaid: '0.00' },
        refunds: '0.00',
        usage: { requests: 9, charged: 6, skipped: 3 },
      });
      expect(D(s.usage.charge).toFixed()).toBe(charge.toFixed());
      expect(D(s.adjustments).toFixed()).toBe(sum(a.adjustments).toFixed()); // 51.2654321099
      expect(s.adjustments).toBe('51.2654321099');
      expectReconciles(s);
      expect(D(s.closingBalance).toFixed()).toBe(sum(a.adjustments).minus(charge).toFixed());
      expect(s.closingBalance).toBe(balance);
      expect(s.usage.byModel).toEqual([
        {
          model: 'gpt-image-2',
          requests: 3,
          charged: 3,
          skipped: 0,
          review: 0,
          charge: expect.any(String),
        },
        {
          model: 'gpt-image-2-all',
          requests: 3,
          charged: 2,
          skipped: 1,
          review: 0,
          charge: '0.072',
        },
        {
          model: 'gpt-image-2-vip',
          requests: 3,
          charged: 1,
          skipped: 2,
          review: 0,
          charge: '0.09',
        },
      ]);
      expect(sum(s.usage.byModel.map((m: Json) => m.charge)).toFixed()).toBe(charge.toFixed());
    });

    it('shows the month before any entry as all zeros', async () => {
      const s = (await me(a, `/statements/${previousMonth(period)}`).expect(200)).body;
      expect(s).toEqual({
        period: previousMonth(period),
        currency: 'USD',
        openingBalance: '0.00',
        topUps: { count: 0, credit: '0.00', cashPaid: '0.00' },
        redemptions: { count: 0, credit: '0.00' },
        usage: { requests: 0, charged: 0, skipped: 0, review: 0, charge: '0.00', byModel: [] },
        refunds: '0.00',
        disputes: '0.00',
        adjustments: '0.00',
        closingBalance: '0.00',
      });
    });

    it.each(['2026-13', '26-11', '2026-1', '2026-00', '2026-11-01', 'latest'])(
      'refuses the malformed period %s naming period',
      async (p) => {
        expectInvalid(await me(a, `/statements/${p}`), ['period']);
        expectInvalid(await asAdmin(a, `/statements/${p}`), ['period']);
      },
    );

    it('refuses a month after the current one', async () => {
      expectInvalid(await me(a, `/statements/${nextMonth(period)}`), ['period']);
    });

    // Protects two races: balances, movements and roll-ups are read in one snapshot (else a
    // batch committing between the reads breaks the sum), and the closing balance is the last
    // entry in booking order, not by created_at (overlapping transactions book out of date order).
    it('reconciles while events are being booked on the account', async () => {
      const c = await createCustomer('Busy', [{ name: 'busy' }]);
      await adjust(c, '100');
      const writes = Array.from({ length: 8 }, () =>
        postBatch(
          c,
          Array.from({ length: 25 }, () => ({
            tokenId: c.tokens[0].id,
            model: 'gpt-image-2-vip',
            images: 1,
          })),
        ),
      );
      const reads = Array.from({ length: 12 }, async (_, i) => {
        await sleep(i * 3);
        return (await me(c, `/statements/${period}`).expect(200)).body as Json;
      });
      const [, statements] = await Promise.all([Promise.all(writes), Promise.all(reads)]);
      for (const s of statements) expectReconciles(s);
      const final = (await me(c, `/statements/${period}`).expect(200)).body;
      expectReconciles(final);
      expect(final.usage.charged).toBe(200);
      expect(final.closingBalance).toBe((await me(c, '').expect(200)).body.balance);
    });
  });

  describe('ledger', () => {
    it('lists every entry once, newest first, with a running balance', async () => {
      const entries = await allPages((cursor) =>
        me(a, `/ledger?limit=3${cursor ? `&cursor=${cursor}` : ''}`),
      );
      expect(entries).toHaveLength(a.charges.size + a.adjustments.length); // 6 usage + 3 adjustments
      const ids = entries.map((e) => BigInt(e.id as string));
      expect(new Set(ids).size).toBe(ids.length);
      ids.slice(1).forEach((id, i) => expect(id < ids[i]).toBe(true));
      // Newest first: each balanceAfter is the next (older) one plus its own amount.
      entries.slice(0, -1).forEach((e, i) => {
        expect(
          D(entries[i + 1].balanceAfter)
            .plus(e.amount)
            .toFixed(),
        ).toBe(D(e.balanceAfter).toFixed());
      });
      expect(entries[entries.length - 1].balanceAfter).toBe('50.00');
      expect(entries[0].balanceAfter).toBe((await me(a, '').expect(200)).body.balance);
      const usage = entries.filter((e) => e.type === 'usage');
      expect(new Set(usage.map((e) => e.reference))).toEqual(new Set(a.charges.keys()));
      for (const e of usage)
        expect(D(e.amount).neg().toFixed()).toBe(D(a.charges.get(e.reference)!).toFixed());
      expect(entries.filter((e) => e.type === 'adjustment').map((e) => e.amount)).toEqual([
        '2.50',
        '-1.2345678901',
        '50.00',
      ]);
      expect(Object.keys(entries[0]).sort()).toEqual(
        ['amount', 'balanceAfter', 'createdAt', 'description', 'id', 'reference', 'type'].sort(),
      );
    });

    it('still takes a cursor of an entry id alone, as pages gave out before', async () => {
      const all = (await me(a, '/ledger?limit=500').expect(200)).body.data as Json[];
      const legacy = Buffer.from(JSON.stringify([all[2].id])).toString('base64url');
      const page = (await me(a, `/ledger?limit=3&cursor=${legacy}`).expect(200)).body;
      expect((page.data as Json[]).map((e) => e.id)).toEqual(all.slice(3, 6).map((e) => e.id));
      // Another account's entry id positions nothing in this account's ledger.
      const other = (await me(b, '/ledger?limit=1').expect(200)).body.data as Json[];
      const foreign = Buffer.from(JSON.stringify([other[0].id])).toString('base64url');
      expect((await me(a, `/ledger?cursor=${foreign}`).expect(200)).body.data).toEqual([]);
    });

    it('refuses a forged cursor and an out-of-range limit', async () => {
      const forged = Buffer.from(JSON.stringify(['1 OR 1=1'])).toString('base64url');
      expectInvalid(await me(a, `/ledger?cursor=${forged}`), ['cursor']);
      expectInvalid(await me(a, '/ledger?cursor=nope'), ['cursor']);
      expectInvalid(await me(a, '/ledger?limit=0'), ['limit']);
      expectInvalid(await me(a, '/ledger?limit=501'), ['limit']);
    });
  });

  describe('usage list', () => {
    it('shows every event, skipped ones with their reason and a charge of "0"', async () => {
      const items = (await me(a, '/usage').expect(200)).body.data as Json[];
      expect(items).toHaveLength(eventCount(a));
      const skipped = items.filter((i) => i.outcome === 'skipped');
      expect(skipped.map((i) => [i.requestId, i.reason, i.charge]).sort()).toEqual(
        [...a.skipped.entries()].map(([id, reason]) => [id, reason, '0']).sort(),
      );
      expect(new Set(skipped.map((i) => i.reason))).toEqual(
        new Set(['upstream_error', 'moderated', 'no_output']),
      );
      for (const i of items.filter((x) => x.outcome === 'charged')) {
        expect(i.charge).toBe(a.charges.get(i.requestId));
        expect(i.reason).toBeNull();
      }
      const enterprise = items.find(
        (i) => i.tokenId === a.tokens[1].id && i.model === 'gpt-image-2',
      )!;
      expect(enterprise).toMatchObject({
        tokenName: '=nightly, "batch"',
        group: 'image2Enterprise',
        ratio: '1.2',
        charge: '0.0005352',
        priceVersion: 1,
      });
      expect(enterprise.breakdown.length).toBeGreaterThan(0);
      expect(Object.keys(items[0]).sort()).toEqual(
        [
          'breakdown',
          'charge',
          'group',
          'model',
          'occurredAt',
          'outcome',
          'priceVersion',
          'ratio',
          'reason',
          'recordedAt',
          'requestId',
          'tokenId',
          'tokenName',
        ].sort(),
      );
    });

    it('lists newest first and pages through every event once', async () => {
      const all = (await me(a, '/usage?limit=500').expect(200)).body.data as Json[];
      const paged = await allPages((cursor) =>
        me(a, `/usage?limit=2${cursor ? `&cursor=${cursor}` : ''}`),
      );
      expect(paged.map((i) => i.requestId)).toEqual(all.map((i) => i.requestId));
      expect(new Set(paged.map((i) => i.requestId)).size).toBe(eventCount(a));
      const times = paged.map((i) => Date.parse(i.recordedAt));
      times.slice(1).forEach((x, i) => expect(x).toBeLessThanOrEqual(times[i]));
      // The second batch was booked later, so it comes first.
      expect(new Set(paged.slice(0, 4).map((i) => i.requestId))).toEqual(new Set(a.batches[1]));
    });

    it('filters by model, token, outcome and booking time', async () => {
      const ids = async (query: string) =>
        new Set(
          (
            await allPages((cursor) =>
              me(a, `/usage?limit=2&${query}${cursor ? `&cursor=${cursor}` : ''}`),
            )
          ).map((i) => i.requestId),
        );
      const items = (await me(a, '/usage?limit=500').expect(200)).body.data as Json[];
      const expectIds = (pred: (i: Json) => boolean) =>
        new Set(items.filter(pred).map((i) => i.requestId));

      expect(await ids('model=gpt-image-2-vip')).toEqual(
        expectIds((i) => i.model === 'gpt-image-2-vip'),
      );
      expect((await ids('model=gpt-image-2-vip')).size).toBe(3);
      expect(await ids(`tokenId=${a.tokens[1].id}`)).toEqual(
        expectIds((i) => i.tokenId === a.tokens[1].id),
      );
      expect(await ids('outcome=charged')).toEqual(new Set(a.charges.keys()));
      expect(await ids('outcome=skipped')).toEqual(new Set(a.skipped.keys()));
      expect(
        await ids(`outcome=charged&model=gpt-image-2-all&tokenId=${a.tokens[1].id}`).then(
          (s) => s.size,
        ),
      ).toBe(2);

      const second = items.find((i) => i.requestId === a.batches[1][0])!.recordedAt as string;
      expect(await ids(`from=${second}`)).toEqual(new Set(a.batches[1]));
      expect(await ids(`to=${second}`)).toEqual(new Set(a.batches[0]));
      expect(await ids(`from=${period}-01&to=${nextMonth(period)}-01`)).toEqual(
        expectIds(() => true),
      );
      const later = new Date(Date.now() + 3_600_000).toISOString();
      expect((await ids(`from=${encodeURIComponent(later)}`)).size).toBe(0);
      // A token of another account filters to nothing rather than showing its events.
      expect((await ids(`tokenId=${b.tokens[0].id}`)).size).toBe(0);
    });

    it('refuses bad filters with a 400 naming each one', async () => {
      expectInvalid(await me(a, '/usage?outcome=refunded'), ['outcome']);
      expectInvalid(await me(a, '/usage?tokenId=abc'), ['tokenId']);
      expectInvalid(await me(a, '/usage?model=no%20spaces'), ['model']);
      expectInvalid(await me(a, '/usage?from=yesterday'), ['from']);
      expectInvalid(await me(a, '/usage?to=2026-11-01T10:00:00'), ['to']); // no zone
      expectInvalid(await me(a, '/usage?from=2026-11-02&to=2026-11-01'), ['to']);
      expectInvalid(await me(a, '/usage?outcome=x&from=y&limit=0'), ['from', 'limit', 'outcome']);
      expectInvalid(await me(a, '/usage?colour=blue'), ['colour']);
      const forged = Buffer.from(JSON.stringify(['not a time', '1'])).toString('base64url');
      expectInvalid(await me(a, `/usage?cursor=${forged}`), ['cursor']);
      expectInvalid(await me(a, '/usage/export?outcome=nope'), ['outcome']);
      expectInvalid(await me(a, '/usage/summary?groupBy=token'), ['groupBy']);
      expectInvalid(await me(a, '/usage/summary?from=2026-02-30'), ['from']);
    });
  });

  describe('usage export', () => {
    it('streams CSV that parses back to the statement count and exact charge', async () => {
      const res = await me(a, `/usage/export?from=${period}-01&to=${nextMonth(period)}-01`).expect(
        200,
      );
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename=".+\.csv"$/);
      expect(res.headers['cache-control']).toBe('no-store');
      const [header, ...rows] = parseCsv(res.text);
      expect(header).toEqual(CSV_COLUMNS);
      const col = (name: string) => CSV_COLUMNS.indexOf(name);
      const statement = (await me(a, `/statements/${period}`).expect(200)).body;
      expect(rows).toHaveLength(statement.usage.requests);
      for (const r of rows) expect(r).toHaveLength(CSV_COLUMNS.length);
      expect(sum(rows.map((r) => r[col('charge')])).toFixed()).toBe(
        D(statement.usage.charge).toFixed(),
      );

      const list = (await me(a, '/usage?limit=500').expect(200)).body.data as Json[];
      expect(rows.map((r) => r[col('request_id')])).toEqual(list.map((i) => i.requestId));
      rows.forEach((r, k) => {
        const i = list[k];
        expect(r[col('charge')]).toBe(i.charge); // every digit as stored
        expect(r[col('outcome')]).toBe(i.outcome);
        expect(r[col('reason')]).toBe(i.reason ?? '');
        expect(r[col('ratio')]).toBe(i.ratio);
        expect(r[col('recorded_at')]).toBe(i.recordedAt);
        expect(r[col('token_name')]).toBe(
          i.tokenName.startsWith('=') ? `'${i.tokenName}` : i.tokenName,
        );
      });
      expect(res.text).toContain(`"'=nightly, ""batch"""`);
      const summary = (
        await me(a, `/usage/summary?from=${period}-01&to=${nextMonth(period)}-01`).expect(200)
      ).body;
      for (const [column, total] of [
        ['input_tokens', 'inputTokens'],
        ['output_tokens', 'outputTokens'],
        ['images', 'images'],
      ]) {
        expect(rows.reduce((n, r) => n + Number(r[col(column)]), 0)).toBe(summary.totals[total]);
      }
    });

    it('streams more events than one database read, each exactly once and newest first', async () => {
      const c = await createCustomer('Exporter', [{ name: 'bulk' }]);
      await adjust(c, '1000');
      // Three transactions: the 1,000 events of a batch share one recordedAt, so the reads
      // continue on the id within a tie.
      for (const n of [1000, 1000, 150]) {
        await postBatch(
          c,
          Array.from({ length: n }, () => ({ tokenId: c.tokens[0].id, model: 'gpt-image-2-all' })),
        );
      }
      const res = await me(c, '/usage/export').expect(200);
      const rows = parseCsv(res.text).slice(1);
      expect(rows).toHaveLength(2150);
      const ids = rows.map((r) => r[0]);
      expect(new Set(ids)).toEqual(new Set([...c.charges.keys()]));
      expect(new Set(ids.slice(0, 150))).toEqual(new Set(c.batches[2]));
      expect(new Set(ids.slice(1150))).toEqual(new Set(c.batches[0]));
      const statement = (await me(c, `/statements/${period}`).expect(200)).body;
      expect(sum(rows.map((r) => r[6])).toFixed()).toBe(D(statement.usage.charge).toFixed());
      expect(statement.usage.charge).toBe('64.50');
    });

    it('exports only the header for a range without events', async () => {
      const res = await me(a, `/usage/export?to=${previousMonth(period)}-01`).expect(200);
      expect(parseCsv(res.text)).toEqual([CSV_COLUMNS]);
    });
  });

  describe('usage summary', () => {
    const totalsOf = (s: Json) => s.totals as Json;

    it('totals by model and by day equal the statement', async () => {
      const statement = (await me(a, `/statements/${period}`).expect(200)).body;
      const range = `from=${period}-01&to=${nextMonth(period)}-01`;
      const byModel = (await me(a, `/usage/summary?groupBy=model&${range}`).expect(200)).body;
      const byDay = (await me(a, `/usage/summary?groupBy=day&${range}`).expect(200)).body;
      expect(byModel.groupBy).toBe('model');
      expect(byModel.from).toBe(`${period}-01T00:00:00.000Z`);
      for (const s of [byModel, byDay]) {
        expect(totalsOf(s)).toMatchObject({
          requests: statement.usage.requests,
          charged: statement.usage.charged,
          skipped: statement.usage.skipped,
          // 89 + 1234 + 7 input and 1145 + 4567 + 13 output tokens; images of charged events.
          inputTokens: 1330,
          outputTokens: 5725,
          images: 8,
        });
        expect(D(totalsOf(s).charge).toFixed()).toBe(D(statement.usage.charge).toFixed());
        expect(sum(s.rows.map((r: Json) => r.charge)).toFixed()).toBe(
          D(statement.usage.charge).toFixed(),
        );
      }
      expect(
        byModel.rows.map((r: Json) => [r.key, r.requests, r.charged, r.skipped, r.charge]),
      ).toEqual(
        statement.usage.byModel.map((m: Json) => [
          m.model,
          m.requests,
          m.charged,
          m.skipped,
          m.charge,
        ]),
      );
      const today = new Date().toISOString().slice(0, 10);
      expect(byDay.rows.map((r: Json) => r.key)).toEqual([today]);
    });

    it('counts partial days from the events exactly as whole days from the roll-ups', async () => {
      const whole = (await me(a, '/usage/summary?groupBy=day').expect(200)).body;
      const soon = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());
      const earlier = encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString());
      for (const query of [`to=${soon}`, `from=${earlier}`, `from=${earlier}&to=${soon}`]) {
        const partial = (await me(a, `/usage/summary?groupBy=day&${query}`).expect(200)).body;
        expect(partial.totals).toEqual(whole.totals);
        expect(partial.rows).toEqual(whole.rows);
      }
    });

    it('is empty for a range without events', async () => {
      const s = (await me(a, `/usage/summary?to=${previousMonth(period)}-01`).expect(200)).body;
      expect(s.rows).toEqual([]);
      expect(s.totals).toEqual({
        requests: 0,
        charged: 0,
        skipped: 0,
        review: 0,
        inputTokens: 0,
        outputTokens: 0,
        images: 0,
        charge: '0.00',
      });
    });
  });

  describe('access', () => {
    it("never shows one account's rows to another", async () => {
      const ledger = (await me(b, '/ledger').expect(200)).body.data as Json[];
      expect(ledger).toHaveLength(2);
      for (const e of ledger) expect(a.charges.has(e.reference)).toBe(false);
      const usage = (await me(b, '/usage').expect(200)).body.data as Json[];
      expect(new Set(usage.map((i) => i.requestId))).toEqual(new Set(b.batches[0]));
      const csv = parseCsv((await me(b, '/usage/export').expect(200)).text);
      expect(
        csv
          .slice(1)
          .map((r) => r[0])
          .sort(),
      ).toEqual([...b.batches[0]].sort());
      const s = (await me(b, `/statements/${period}`).expect(200)).body;
      expect(s.usage).toMatchObject({ requests: 2, charged: 1, skipped: 1, charge: '0.03' });
      expect(s.closingBalance).toBe('4.97');
      const summary = (await me(b, '/usage/summary').expect(200)).body;
      expect(summary.totals.requests).toBe(2);
    });

    it("refuses a customer on the admin routes, even for its own account, and other roles' keys", async () => {
      for (const path of [
        '/ledger',
        '/usage',
        '/usage/export',
        '/usage/summary',
        `/statements/${period}`,
      ]) {
        expect((await get(`/v1/admin/accounts/${a.id}${path}`, b.key)).status).toBe(403);
        expect((await get(`/v1/admin/accounts/${b.id}${path}`, b.key)).status).toBe(403);
        expect((await get(`/v1/me${path}`, t.gatewayKey)).status).toBe(403);
        expect((await get(`/v1/me${path}`, t.adminKey)).status).toBe(403);
        expect((await t.http.get(`/v1/me${path}`)).status).toBe(401);
      }
    });

    it('answers 404 for an unknown account on every admin view', async () => {
      for (const id of [randomUUID(), 'not-an-id']) {
        for (const path of [
          '/ledger',
          '/usage',
          '/usage/export',
          '/usage/summary',
          `/statements/${period}`,
        ]) {
          const res = await get(`/v1/admin/accounts/${id}${path}`, t.adminKey);
          expect(res.status).toBe(404);
          expect(res.body.error.code).toBe('not_found');
        }
      }
    });

    it('gives admins the same views as the customer', async () => {
      for (const path of [
        '/ledger?limit=4',
        '/usage?limit=3&outcome=charged',
        '/usage/summary?groupBy=day',
        '/usage/summary',
        `/statements/${period}`,
        `/statements/${previousMonth(period)}`,
      ]) {
        const mine = (await me(a, path).expect(200)).body;
        const theirs = (await asAdmin(a, path).expect(200)).body;
        expect(theirs).toEqual(mine);
      }
      expect((await asAdmin(a, '/usage/export').expect(200)).text).toBe(
        (await me(a, '/usage/export').expect(200)).text,
      );
    });
  });
});
