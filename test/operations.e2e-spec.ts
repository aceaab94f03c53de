import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  adminHeaders,
  createToken,
  expectErrorBody,
  fundedAccount,
  gatewayHeaders,
  Json,
  postEvent,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const run = promisify(execFile);

/** promtool, when the machine has it (.ci/run installs Debian's prometheus package). */
async function promtool(text: string): Promise<{ ok: boolean; output: string } | null> {
  try {
    await run('promtool', ['--version']);
  } catch {
    return null;
  }
  const file = join(mkdtempSync(join(tmpdir(), 'metrics-')), 'metrics.txt');
  writeFileSync(file, text);
  try {
    const { stdout, stderr } = await run('sh', ['-c', `promtool check metrics < ${file}`]);
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('operations', () => {
  const alice = `alice:${randomBytes(16).toString('hex')}`;
  const bob = `bob:${randomBytes(16).toString('hex')}`;
  const metricsToken = `metrics_${randomBytes(16).toString('hex')}`;
  const keyOf = (entry: string): string => entry.slice(entry.indexOf(':') + 1);
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({
      ADMIN_API_KEY: `${alice},${bob}`,
      METRICS_TOKEN: metricsToken,
      RATE_LIMIT_PER_MINUTE: '600',
      UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE: '60',
      LOCK_TIMEOUT_MS: '1500',
    });
    t.adminKey = keyOf(alice);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('request ids and headers', () => {
    it('answers the X-Request-Id it was sent, and makes one when it was sent none or a hostile one', async () => {
      const sent = await t.http.get('/health').set('X-Request-Id', 'req-abc.123').expect(200);
      expect(sent.headers['x-request-id']).toBe('req-abc.123');
      const made = await t.http.get('/health').expect(200);
      expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const hostile = await t.http
        .get('/health')
        .set('X-Request-Id', '=HYPERLINK("http://x")')
        .expect(200);
      expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('sends no-store and the security headers on /v1 answers, including one that carries a new key', async () => {
      const res = await t.http
        .post('/v1/admin/accounts')
        .set(...adminHeaders(t))
        .send({ name: 'Headers' })
        .expect(201);
      expect(res.body.consoleKey).toMatch(/^ck_/);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['etag']).toBeUndefined();
    });

    it('answers a path it cannot decode with a 400 naming the path, its request id and the same headers', async () => {
      const res = await t.http
        .get('/v1/admin/accounts/%zz')
        .set(...adminHeaders(t))
        .set('X-Request-Id', 'req-bad-path');
      expectErrorBody(res, 400, 'validation_failed');
      expect(res.body.error.details).toEqual([
        { field: 'path', message: 'the path is not validly percent-encoded' },
      ]);
      expect(res.headers['x-request-id']).toBe('req-bad-path');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
    });

    it('routes a path with a trailing slash or in another letter case as Express did', async () => {
      await t.http
        .get('/v1/models/')
        .set(...adminHeaders(t))
        .expect(200);
      await t.http
        .get('/V1/Models')
        .set(...adminHeaders(t))
        .expect(200);
    });
  });

  describe('bodies', () => {
    it('checks the key before reading the body: a large body without a key is 401, with one 413', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(1024 * 1024) });
      const keyless = await t.http
        .post('/v1/admin/groups')
        .set('Content-Type', 'application/json')
        .send(big);
      expectErrorBody(keyless, 401, 'unauthorized');
      const keyed = await t.http
        .post('/v1/admin/groups')
        .set(...adminHeaders(t))
        .set('Content-Type', 'application/json')
        .send(big);
      expectErrorBody(keyed, 413, 'payload_too_large');
    });

    it('answers a keyless request before its body arrives: 401 with 1 KiB of a declared 50 MB sent', async () => {
      const server = t.app.getHttpServer() as Server;
      if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('\r\n\r\n')) {
            socket.destroy();
            resolve(text);
          }
        });
        socket.on('error', reject);
        socket.write(
          'POST /v1/usage-events/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${50 * 1024 * 1024}\r\n\r\n{"events":[` +
            ' '.repeat(1024),
        );
      });
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer.toLowerCase()).toContain('connection: close');
    });

    it('refuses a body over 64 KiB on an ordinary route and takes one over it on the batch route', async () => {
      const acc = await fundedAccount(t, 'Bodies');
      const token = await createToken(t, acc.id);
      const over = JSON.stringify({ name: 'g', ratio: '1.0', description: 'd'.repeat(65 * 1024) });
      expectErrorBody(
        await t.http
          .post('/v1/admin/groups')
          .set(...adminHeaders(t))
          .set('Content-Type', 'application/json')
          .send(over),
        413,
        'payload_too_large',
      );
      const events = Array.from({ length: 600 }, (_, i) => ({
        requestId: `body-${randomUUID()}-${i}`,
        tokenId: token.id,
        model: 'gpt-image-2-all',
        statusCode: 200,
        errorCode: 'x'.repeat(90),
      }));
      const body = JSON.stringify({ events });
      expect(body.length).toBeGreaterThan(64 * 1024);
      const res = await t.http
        .post('/v1/usage-events/batch')
        .set(...gatewayHeaders(t))
        .set('Content-Type', 'application/json')
        .send(body)
        .expect(200);
      expect(res.body.results).toHaveLength(600);
    });
  });

  describe('isolation under locks', () => {
    // Protects group commit from one stuck account: its row lock held elsewhere must not hold
    // back the other accounts' events, which answer while the lock is still held.
    it('answers other accounts while one account is locked, and the locked one with 503 once its wait runs out', async () => {
      const stuck = await fundedAccount(t, 'Stuck');
      const stuckToken = await createToken(t, stuck.id);
      const others = await Promise.all([fundedAccount(t, 'Free 1'), fundedAccount(t, 'Free 2')]);
      const otherTokens = await Promise.all(others.map((a) => createToken(t, a.id)));
      const holder = new pg.Client({ connectionString: t.databaseUrl });
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [stuck.id]);
      let released = false;
      const releaseAt = new Promise<void>((resolve) =>
        setTimeout(() => {
          released = true;
          void holder.query('ROLLBACK').then(() => resolve());
        }, 4000),
      );
      const event = (tokenId: string) => ({
        requestId: `lock-${randomUUID()}`,
        tokenId,
        model: 'gpt-image-2-all',
        statusCode: 200,
      });
      const stuckEvent = event(stuckToken.id);
      const stuckAnswer = postEvent(t, stuckEvent).then((r) => ({ r, released }));
      const otherAnswers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          postEvent(t, event(otherTokens[i % 2].id)).then((r) => ({ r, released })),
        ),
      );
      for (const { r, released: after } of otherAnswers) {
        expect(r.status).toBe(201);
        expect(after).toBe(false);
      }
      const { r: stuckRes, released: stuckAfter } = await stuckAnswer;
      expectErrorBody(stuckRes, 503, 'service_unavailable');
      expect(stuckRes.headers['retry-after']).toBe('1');
      expect(stuckAfter).toBe(false);
      await releaseAt;
      await holder.end();
      // Nothing was written for it; sent again, it is booked once.
      await postEvent(t, stuckEvent).expect(201);
      await postEvent(t, stuckEvent).expect(200);
    });
    // The same for authorize's group commit: a group whose statement waits on one locked
    // account fails as a whole, and its other authorizes are answered alone, at once.
    it('answers authorizes of other accounts while one account is locked, and the locked one with 503', async () => {
      const stuck = await fundedAccount(t, 'Stuck holds');
      const stuckToken = await createToken(t, stuck.id);
      const free = await fundedAccount(t, 'Free holds');
      const freeToken = await createToken(t, free.id);
      const authorize = (key: string) =>
        t.http
          .post('/v1/gateway/authorize')
          .set(...gatewayHeaders(t))
          .send({ key, model: 'gpt-image-2-all', requestId: `lock-${randomUUID()}` });
      // A first authorize per key: the next ones place their holds with the facts, under the
      // account's row lock.
      for (const key of [stuckToken.key, freeToken.key]) {
        expect((await authorize(key).expect(200)).body).toMatchObject({ allowed: true });
      }
      const holder = new pg.Client({ connectionString: t.databaseUrl });
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [stuck.id]);
      let released = false;
      const releaseAt = new Promise<void>((resolve) =>
        setTimeout(() => {
          released = true;
          void holder.query('ROLLBACK').then(() => resolve());
        }, 4000),
      );
      const stuckAnswer = authorize(stuckToken.key).then((r) => ({ r, released }));
      const freeAnswers = await Promise.all(
        Array.from({ length: 10 }, () => authorize(freeToken.key).then((r) => ({ r, released }))),
      );
      for (const { r, released: after } of freeAnswers) {
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ allowed: true, hold: { amount: '0.03' } });
        expect(after).toBe(false);
      }
      const { r: stuckRes, released: stuckAfter } = await stuckAnswer;
      expectErrorBody(stuckRes, 503, 'service_unavailable');
      expect(stuckAfter).toBe(false);
      await releaseAt;
      await holder.end();
      // Eleven holds on the free account, one on the stuck one: nothing of the failed group stayed.
      const held = await t.sql.query<{ id: string; held: string; holds: string }>(
        `SELECT a.id, a.held::text AS held,
                (SELECT count(*) FROM holds h WHERE h.account_id = a.id AND h.status = 'active')::text AS holds
         FROM accounts a WHERE a.id = ANY ($1::uuid[]) ORDER BY a.id`,
        [[stuck.id, free.id]],
      );
      const byId = new Map(held.rows.map((r) => [r.id, r]));
      expect(byId.get(free.id)).toMatchObject({ held: '0.3300000000', holds: '11' });
      expect(byId.get(stuck.id)).toMatchObject({ held: '0.0300000000', holds: '1' });
    });
  });

  describe('metrics', () => {
    it('serves Prometheus text to the admin key and METRICS_TOKEN only, with the billing metrics', async () => {
      expectErrorBody(await t.http.get('/metrics'), 401, 'unauthorized');
      expectErrorBody(await t.http.get('/metrics').set(...gatewayHeaders(t)), 401, 'unauthorized');
      const acc = await fundedAccount(t, 'Metrics');
      const token = await createToken(t, acc.id);
      await postEvent(t, {
        requestId: `m-${randomUUID()}`,
        tokenId: token.id,
        model: 'gpt-image-2-all',
        statusCode: 200,
      }).expect(201);
      await postEvent(t, {
        requestId: `m-${randomUUID()}`,
        tokenId: token.id,
        model: 'gpt-image-2-all',
        statusCode: 500,
      }).expect(201);
      await t.http
        .post('/v1/gateway/authorize')
        .set(...gatewayHeaders(t))
        .send({ key: token.key, model: 'gpt-image-2-all', requestId: `m-${randomUUID()}` })
        .expect(200);
      const res = await t.http
        .get('/metrics')
        .set(...bearer(metricsToken))
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const text = res.text;
      for (const name of [
        'billing_usage_events_total',
        'billing_charge_usd_total',
        'billing_authorize_total',
        'billing_holds_active',
        'billing_ingest_batch_size_bucket',
        'billing_authorize_group_size_bucket',
        'billing_http_request_duration_seconds_bucket',
        'billing_stripe_events_total',
        'process_cpu_user_seconds_total',
      ]) {
        expect(text).toContain(name);
      }
      expect(text).toMatch(/billing_usage_events_total\{outcome="charged"\} [1-9]/);
      expect(text).toMatch(/billing_usage_events_total\{outcome="skipped"\} [1-9]/);
      expect(text).toMatch(/billing_charge_usd_total\{model="gpt-image-2-all"\} \d+(\.\d+)?\n/);
      expect(text).toMatch(/billing_authorize_total\{allowed="true",reason=""\} [1-9]/);
      expect(text).toMatch(/billing_holds_active [1-9]/);
      expect(text).toMatch(
        /billing_http_request_duration_seconds_bucket\{le="[^"]+",route="\/v1\/usage-events",status="201"\}/,
      );
      await t.http
        .get('/metrics')
        .set(...adminHeaders(t))
        .expect(200);
      // Every sample line is name{labels} value: what Prometheus parses.
      for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
        expect(line).toMatch(
          /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|\+Inf|-Inf)$/,
        );
      }
      const checked = await promtool(text);
      if (checked) expect(checked).toEqual({ ok: true, output: checked.ok ? checked.output : '' });
    });
  });

  describe('audit log', () => {
    it('records each admin change with its actor, before and after, newest first, filterable', async () => {
      const name = `audited_${randomBytes(3).toString('hex')}`;
      await t.http
        .post('/v1/admin/groups')
        .set(...bearer(keyOf(alice)))
        .send({ name, ratio: '1.1' })
        .expect(201);
      await t.http
        .patch(`/v1/admin/groups/${name}`)
        .set(...bearer(keyOf(bob)))
        .send({ ratio: '1.3' })
        .expect(200);
      const all = (
        await t.http
          .get(`/v1/admin/audit-log?target=group:${name}`)
          .set(...adminHeaders(t))
          .expect(200)
      ).body;
      expect(all.data).toEqual([
        {
          id: expect.any(String),
          actor: 'bob',
          action: 'group.update',
          target: `group:${name}`,
          before: expect.objectContaining({ ratio: '1.1' }),
          after: expect.objectContaining({ ratio: '1.3' }),
          at: expect.any(String),
        },
        expect.objectContaining({ actor: 'alice', action: 'group.create', before: null }),
      ]);
      const byBob = (
        await t.http
          .get('/v1/admin/audit-log?actor=bob')
          .set(...adminHeaders(t))
          .expect(200)
      ).body;
      expect(byBob.data.every((e: Json) => e.actor === 'bob')).toBe(true);
      await expect(t.sql.query(`UPDATE audit_log SET actor = 'mallory'`)).rejects.toThrow(
        /append-only/,
      );
      await expect(t.sql.query(`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);
    });

    it('records account changes, credit limits and adjustments with their actor, never a key', async () => {
      const created = await t.http
        .post('/v1/admin/accounts')
        .set(...bearer(keyOf(alice)))
        .send({ name: 'Audited account' })
        .expect(201);
      const id = created.body.id as string;
      await t.http
        .patch(`/v1/admin/accounts/${id}`)
        .set(...bearer(keyOf(bob)))
        .send({ creditLimit: '50.00' })
        .expect(200);
      await t.http
        .post(`/v1/admin/accounts/${id}/adjustments`)
        .set(...bearer(keyOf(alice)))
        .set('Idempotency-Key', `audit-${randomUUID()}`)
        .send({ amount: '5.00', reason: 'goodwill' })
        .expect(201);
      const rotated = await t.http
        .post(`/v1/admin/accounts/${id}/console-key`)
        .set(...bearer(keyOf(bob)))
        .expect(201);
      const log = (
        await t.http
          .get(`/v1/admin/audit-log?target=account:${id}`)
          .set(...adminHeaders(t))
          .expect(200)
      ).body.data as Json[];
      expect(log.map((e) => [e.actor, e.action])).toEqual([
        ['bob', 'account.rotate_console_key'],
        ['alice', 'account.adjust'],
        ['bob', 'account.update'],
        ['alice', 'account.create'],
      ]);
      expect(log[2].before.creditLimit).toBe('0.00');
      expect(log[2].after.creditLimit).toBe('50.00');
      expect(log[1].after).toMatchObject({ amount: '5', reason: 'goodwill' });
      const text = JSON.stringify(log);
      expect(text).not.toContain(created.body.consoleKey);
      expect(text).not.toContain(rotated.body.consoleKey);
    });

    it('records price changes, admin token creation and review decisions, never a key', async () => {
      const model = `audit-model-${randomBytes(3).toString('hex')}`;
      await t.http
        .put(`/v1/admin/models/${model}`)
        .set(...bearer(keyOf(alice)))
        .send({ mode: 'per_image', perImage: '0.02' })
        .expect((r) => expect([200, 201]).toContain(r.status));
      const acc = await fundedAccount(t, 'Audit tokens', '20.00');
      const token = await createToken(t, acc.id);
      const requestId = `audit-${randomUUID()}`;
      await postEvent(t, {
        requestId,
        tokenId: token.id,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: { inputTokens: 100, outputTokens: 200_000 },
      }).expect(201);
      await t.http
        .post(`/v1/admin/usage-reviews/${requestId}/void`)
        .set(...bearer(keyOf(bob)))
        .expect(200);
      const log = (
        await t.http
          .get('/v1/admin/audit-log?limit=500')
          .set(...adminHeaders(t))
          .expect(200)
      ).body.data as Json[];
      expect(log.find((e) => e.target === `model:${model}`)).toMatchObject({
        actor: 'alice',
        action: 'price.put',
        before: null,
      });
      expect(log.find((e) => e.target === `token:${token.id}`)).toMatchObject({
        actor: 'alice',
        action: 'token.create',
      });
      expect(log.find((e) => e.target === `usage:${requestId}`)).toMatchObject({
        actor: 'bob',
        action: 'usage_review.void',
        after: expect.objectContaining({ outcome: 'voided' }),
      });
      expect(JSON.stringify(log)).not.toContain(token.key);
    });
  });

  describe('CSV export', () => {
    it('neutralises formulas in every text field, the gateway request id included', async () => {
      const acc = await fundedAccount(t, 'CSV');
      const token = await createToken(t, acc.id, { name: '@evil' });
      const requestId = `=HYPERLINK("http://evil.test","x")${randomBytes(2).toString('hex')}`;
      await postEvent(t, {
        requestId,
        tokenId: token.id,
        model: 'gpt-image-2-all',
        statusCode: 200,
      }).expect(201);
      const csv = (
        await t.http
          .get('/v1/me/usage/export')
          .set(...bearer(acc.consoleKey))
          .expect(200)
      ).text;
      const line = csv.split('\r\n')[1];
      expect(line.startsWith(`"'=HYPERLINK(`)).toBe(true);
      expect(line).toContain(",'@evil,");
    });
  });
});

describe('rate limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      RATE_LIMIT_PER_MINUTE: '5',
      UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE: '60',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers a customer key past its limit with 429 and Retry-After, and never limits the gateway or admins', async () => {
    const acc = await fundedAccount(t, 'Limited');
    const token = await createToken(t, acc.id);
    const statuses: number[] = [];
    let limited: Json | null = null;
    for (let i = 0; i < 7; i++) {
      const res = await t.http.get('/v1/me').set(...bearer(acc.consoleKey));
      statuses.push(res.status);
      if (res.status === 429) limited = { body: res.body, retry: res.headers['retry-after'] };
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(limited?.body.error.code).toBe('rate_limited');
    expect(Number(limited?.retry)).toBeGreaterThan(0);
    expect(Number(limited?.retry)).toBeLessThanOrEqual(60);
    for (let i = 0; i < 10; i++) {
      await t.http
        .post('/v1/gateway/authorize')
        .set(...gatewayHeaders(t))
        .send({ key: token.key, model: 'gpt-image-2-all' })
        .expect(200);
      await t.http
        .get(`/v1/admin/accounts/${acc.id}`)
        .set(...adminHeaders(t))
        .expect(200);
    }
    // Another customer has a window of its own.
    const other = await fundedAccount(t, 'Other');
    await t.http
      .get('/v1/me')
      .set(...bearer(other.consoleKey))
      .expect(200);
  });
});

describe('rate limits shared through Redis', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    const env = { RATE_LIMIT_PER_MINUTE: '4', RATE_LIMIT_REDIS_URL: 'redis://127.0.0.1:6379' };
    a = await createTestApp(env);
    b = await createTestApp(env, a);
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('counts a customer against one window across two instances', async () => {
    const acc = await fundedAccount(a, 'Shared window');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const app = i % 2 === 0 ? a : b;
      statuses.push((await app.http.get('/v1/me').set(...bearer(acc.consoleKey))).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });
});
