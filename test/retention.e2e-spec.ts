import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { reconcile } from '../src/statements/reconcile.js';
import { UsagePartitions } from '../src/usage/usage-partitions.js';
import {
  createToken,
  fundedAccount,
  gatewayHeaders,
  Json,
  postEvent,
  postEvents,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

/** YYYY-MM of the month `delta` months from now (UTC). */
const month = (delta: number): string => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + delta, 1))
    .toISOString()
    .slice(0, 7);
};
const partition = (m: string): string => `usage_events_${m.replace('-', '_')}`;

/**
 * Monthly partitions and USAGE_RETENTION_MONTHS: a dropped month takes only raw events. The
 * events are booked through the API, then moved (with their roll-ups and ledger entries, in
 * one transaction with triggers off: a test's time machine) into an old month; a second
 * instance started with retention drops it.
 */
describe('usage partitions and retention', () => {
  let t: TestApp;
  let withRetention: TestApp;
  let account: { id: string; consoleKey: string };
  let tokenId: string;
  let tokenKey: string;
  let reviewAccount: { id: string };
  const old = month(-3);
  const older = month(-4);
  const events: Json[] = [];
  const answers: Json[] = [];
  const before: Record<string, Json> = {};

  const me = (path: string) =>
    t.http
      .get(`/v1/me${path}`)
      .set(...bearer(account.consoleKey))
      .expect(200)
      .then((r) => r.body as Json);

  /** Moves an account's usage, roll-ups and ledger `months` back (a test's time machine). */
  const backdate = async (accountId: string, months: number, to: string): Promise<void> => {
    const c = await t.sql.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SET LOCAL session_replication_role = replica`); // the ledger is append-only
      await c.query(`SELECT usage_events_add_month($1::date)`, [`${to}-01`]);
      const shift = `interval '${months} months'`;
      await c.query(
        `UPDATE usage_events SET recorded_at = recorded_at - ${shift}, occurred_at = occurred_at - ${shift}
         WHERE account_id = $1`,
        [accountId],
      );
      await c.query(
        `UPDATE usage_requests SET recorded_at = recorded_at - ${shift} WHERE account_id = $1`,
        [accountId],
      );
      await c.query(`UPDATE usage_daily SET day = (day - ${shift})::date WHERE account_id = $1`, [
        accountId,
      ]);
      await c.query(
        `UPDATE ledger_entries SET created_at = created_at - ${shift} WHERE account_id = $1`,
        [accountId],
      );
      await c.query(`UPDATE accounts SET created_at = created_at - ${shift} WHERE id = $1`, [
        accountId,
      ]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  };

  beforeAll(async () => {
    t = await createTestApp();
    account = await fundedAccount(t, 'retained', '10.00');
    const token = await createToken(t, account.id);
    tokenId = token.id;
    tokenKey = token.key;
    events.push(
      // Token lines that are not the default split: the breakdown is rebuilt from `lines`.
      {
        requestId: 'ret-split',
        tokenId,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: {
          inputTokens: 300,
          outputTokens: 1200,
          inputTokensDetails: { textTokens: 100, imageTokens: 200, cachedTokens: 50 },
          outputTokensDetails: { textTokens: 20, imageTokens: 1180 },
        },
      },
      {
        requestId: 'ret-plain',
        tokenId,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: { inputTokens: 89, outputTokens: 1145 },
      },
      { requestId: 'ret-vip', tokenId, model: 'gpt-image-2-vip', statusCode: 200, images: 2 },
      { requestId: 'ret-failed', tokenId, model: 'gpt-image-2-all', statusCode: 502 },
    );
    for (const e of events) answers.push((await postEvent(t, e).expect(201)).body as Json);

    // Another account with an event still waiting for review, moved a month further back.
    reviewAccount = await fundedAccount(t, 'in review', '100.00');
    const reviewToken = (await createToken(t, reviewAccount.id)).id;
    const review = await postEvent(t, {
      requestId: 'ret-review',
      tokenId: reviewToken,
      model: 'gpt-image-2',
      statusCode: 200,
      usage: { inputTokens: 10, outputTokens: 9_000_000 },
    }).expect(201);
    expect(review.body.outcome).toBe('review');
  });

  afterAll(async () => {
    await withRetention?.close();
    await t?.close();
  });

  it('rebuilds every stored breakdown exactly as it was priced', async () => {
    const listed = (await me('/usage?limit=100')).data as Json[];
    for (const a of answers) {
      const item = listed.find((u) => u.requestId === a.requestId) as Json;
      expect(item).toMatchObject({
        outcome: a.outcome,
        charge: a.charge,
        ratio: a.ratio,
        priceVersion: a.priceVersion,
      });
      expect(item.breakdown).toEqual(a.breakdown);
    }
    const split = answers[0];
    expect(split.breakdown.map((l: Json) => l.item)).toEqual([
      'input_text_tokens',
      'input_image_tokens',
      'cached_input_tokens',
      'output_text_tokens',
      'output_image_tokens',
    ]);
    // Only the event whose tokens did not split the default way stores its lines.
    const stored = await t.sql.query<{ request_id: string; lines: string[] | null }>(
      `SELECT request_id, lines::text[] AS lines FROM usage_events WHERE account_id = $1 ORDER BY request_id`,
      [account.id],
    );
    expect(stored.rows).toEqual([
      { request_id: 'ret-failed', lines: null },
      { request_id: 'ret-plain', lines: null },
      { request_id: 'ret-split', lines: ['50', '200', '50', '20', '1180', '0'] },
      { request_id: 'ret-vip', lines: null },
    ]);
  });

  it('keeps this month and the next three ready as partitions', async () => {
    const months = await t.app.get(UsagePartitions).months();
    expect(months).toEqual(expect.arrayContaining([month(0), month(1), month(2), month(3)]));
  });

  it('drops a month past retention and keeps ledger, statements and summaries exact', async () => {
    await backdate(account.id, 3, old);
    await backdate(reviewAccount.id, 4, older);
    const range = `from=${old}-01T00:00:00Z&to=${month(-2)}-01T00:00:00Z`;
    before.statement = await me(`/statements/${old}`);
    before.summary = await me(`/usage/summary?${range}&groupBy=model`);
    before.days = await me(`/usage/summary?${range}&groupBy=day`);
    before.ledger = await me('/ledger?limit=100');
    before.me = await me('');
    expect((await me(`/usage?${range}`)).data).toHaveLength(4);
    expect(before.statement.usage).toMatchObject({ requests: 4, charged: 3, skipped: 1 });

    withRetention = await createTestApp({ USAGE_RETENTION_MONTHS: '2' }, t);

    const exists = async (m: string): Promise<boolean> =>
      (await t.sql.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [partition(m)])).rows[0].e;
    expect(await exists(old)).toBe(false);
    // The older month still has an event waiting for an admin: it is kept.
    expect(await exists(older)).toBe(true);
    expect(await exists(month(0))).toBe(true);

    expect(await me(`/statements/${old}`)).toEqual(before.statement);
    expect(await me(`/usage/summary?${range}&groupBy=model`)).toEqual(before.summary);
    expect(await me(`/usage/summary?${range}&groupBy=day`)).toEqual(before.days);
    expect(await me('/ledger?limit=100')).toEqual(before.ledger);
    // The raw events of that month are what went.
    expect((await me(`/usage?${range}`)).data).toEqual([]);
    expect((await reconcile(t.app.get(DataSource))).problems).toEqual([]);
  });

  it('still answers a replay of a dropped event as a duplicate, charging nothing more', async () => {
    const replay = await postEvent(withRetention, events[1]).expect(200);
    expect(replay.body).toEqual({
      requestId: 'ret-plain',
      tokenId,
      model: 'gpt-image-2',
      outcome: 'charged',
      charge: answers[1].charge,
      recordedAt: expect.stringMatching(new RegExp(`^${old}`)),
      duplicate: true,
      archived: true,
    });
    const batch = await postEvents(withRetention, [events[0], events[3]]).expect(200);
    expect(batch.body.results).toEqual([
      { requestId: 'ret-split', outcome: 'duplicate', charge: answers[0].charge },
      { requestId: 'ret-failed', outcome: 'duplicate', charge: '0' },
    ]);
    const changed = await postEvent(withRetention, { ...events[2], images: 3 }).expect(409);
    expect(changed.body.error.code).toBe('conflict');

    // A hold for a request the register knows is refused, though its event is gone.
    const authorize = await withRetention.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(withRetention))
      .send({ key: tokenKey, model: 'gpt-image-2', requestId: 'ret-plain' })
      .expect(200);
    expect(authorize.body).toMatchObject({ allowed: false, reason: 'request_settled' });

    expect((await me('')).balance).toBe(before.me.balance);
    expect(await me('/ledger?limit=100')).toEqual(before.ledger);
    expect((await reconcile(t.app.get(DataSource))).problems).toEqual([]);
  });
});
