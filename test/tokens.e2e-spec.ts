import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import {
  adminHeaders,
  createAccount,
  errorFields,
  expectErrorBody,
  ISO,
  UUID,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const TOKEN_KEYS = [
  'allowedModels',
  'createdAt',
  'expiresAt',
  'group',
  'held',
  'id',
  'keyPrefix',
  'lastUsedAt',
  'name',
  'spendLimit',
  'spent',
  'status',
];

interface Token {
  id: string;
  name: string;
  group: string;
  keyPrefix: string;
  status: 'active' | 'revoked';
  expiresAt: string | null;
  spendLimit: string | null;
  spent: string;
  allowedModels: string[] | null;
  createdAt: string;
  lastUsedAt: string | null;
  key?: string;
}

const inHours = (h: number): string => new Date(Date.now() + h * 3600_000).toISOString();

describe('API tokens', () => {
  let t: TestApp;
  /** Two customers: A does most things, B reaches for A's tokens. */
  let a: { id: string; consoleKey: string };
  let b: { id: string; consoleKey: string };

  const myTokens = (consoleKey: string, query: Record<string, string | number> = {}) =>
    t.http
      .get('/v1/me/tokens')
      .query(query)
      .set(...bearer(consoleKey));
  const createMine = (consoleKey: string, body: Record<string, unknown>) =>
    t.http
      .post('/v1/me/tokens')
      .set(...bearer(consoleKey))
      .send(body);
  const patchMine = (consoleKey: string, id: string, body: Record<string, unknown>) =>
    t.http
      .patch(`/v1/me/tokens/${id}`)
      .set(...bearer(consoleKey))
      .send(body);
  const deleteMine = (consoleKey: string, id: string) =>
    t.http.delete(`/v1/me/tokens/${id}`).set(...bearer(consoleKey));
  const createAsAdmin = (accountId: string, body: Record<string, unknown>) =>
    t.http
      .post(`/v1/admin/accounts/${accountId}/tokens`)
      .set(...adminHeaders(t))
      .send(body);

  const storedToken = async (id: string) => {
    const r = await t.sql.query(`SELECT * FROM api_tokens WHERE id = $1`, [id]);
    return r.rows[0] as Record<string, unknown> | undefined;
  };
  const countTokens = async (): Promise<number> => {
    const r = await t.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM api_tokens`);
    return r.rows[0].n;
  };

  beforeAll(async () => {
    t = await createTestApp();
    a = await createAccount(t, 'Customer A');
    b = await createAccount(t, 'Customer B');
  });
  afterAll(async () => {
    await t.close();
  });

  describe('creating tokens', () => {
    it('creates a token for an account as admin and shows its sk- key only in that response', async () => {
      const res = await createAsAdmin(a.id, { name: 'production' }).expect(201);
      const created = res.body as Token;
      expect(Object.keys(created).sort()).toEqual([...TOKEN_KEYS, 'key'].sort());
      expect(created).toEqual({
        id: expect.stringMatching(UUID),
        name: 'production',
        group: 'default',
        keyPrefix: expect.any(String),
        status: 'active',
        expiresAt: null,
        spendLimit: null,
        spent: '0.00',
        held: '0.00',
        allowedModels: null,
        createdAt: expect.stringMatching(ISO),
        lastUsedAt: null,
        key: expect.stringMatching(/^sk-.{20,}$/),
      });
      const key = created.key!;
      expect(key.startsWith(created.keyPrefix)).toBe(true);
      expect(created.keyPrefix.length).toBeLessThan(key.length);

      const list = await t.http
        .get(`/v1/admin/accounts/${a.id}/tokens`)
        .set(...adminHeaders(t))
        .expect(200);
      const listed = (list.body.data as Token[]).find((x) => x.id === created.id);
      expect(listed).toBeDefined();
      expect(Object.keys(listed!).sort()).toEqual(TOKEN_KEYS);
      expect(JSON.stringify(list.body)).not.toContain(key);

      const mine = await myTokens(a.consoleKey).expect(200);
      expect((mine.body.data as Token[]).map((x) => x.id)).toContain(created.id);
      expect(JSON.stringify(mine.body)).not.toContain(key);
    });

    it('stores only a hash of the token key, in no column the key itself', async () => {
      const res = await createMine(a.consoleKey, { name: 'hash check' }).expect(201);
      const { id, key } = res.body as Token;
      const cols = await t.sql.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns WHERE table_name = 'api_tokens'`,
      );
      const names = cols.rows.map((c) => c.column_name);
      expect(names).toContain('key_hash');
      expect(names).not.toContain('key');
      const row = await storedToken(id);
      expect(row).toBeDefined();
      // Column by column, so a failure names the column that holds the key.
      const holding = Object.entries(row!)
        .filter(([, value]) => (JSON.stringify(value) ?? '').includes(key!))
        .map(([col]) => col);
      expect(holding).toEqual([]);
      expect(row!.key_hash).not.toBe(key);
      expect(String(row!.key_hash)).toMatch(/^[0-9a-f]{64}$/);
    });

    it('gives every token its own key', async () => {
      const one = await createMine(a.consoleKey, { name: 'twin 1' }).expect(201);
      const two = await createMine(a.consoleKey, { name: 'twin 2' }).expect(201);
      expect(one.body.key).not.toBe(two.body.key);
      expect(one.body.id).not.toBe(two.body.id);
    });

    it('lets a customer create a token with a group, an expiry, a spend limit and allowed models', async () => {
      const expiresAt = inHours(48);
      const res = await createMine(a.consoleKey, {
        name: 'limited',
        group: 'default',
        expiresAt,
        spendLimit: '25.50',
        allowedModels: ['gpt-image-2', 'gpt-image-2-vip'],
      }).expect(201);
      expect(res.body).toMatchObject({
        name: 'limited',
        group: 'default',
        status: 'active',
        spendLimit: '25.50',
        spent: '0.00',
        allowedModels: ['gpt-image-2', 'gpt-image-2-vip'],
        key: expect.stringMatching(/^sk-/),
      });
      expect(Date.parse(res.body.expiresAt as string)).toBe(Date.parse(expiresAt));
      expect(res.body.expiresAt).toMatch(ISO);
      const row = await storedToken(res.body.id as string);
      expect(row?.account_id).toBe(a.id);
    });

    it('puts a token in the default group when no group is given', async () => {
      const res = await createMine(a.consoleKey, { name: 'no group' }).expect(201);
      expect(res.body.group).toBe('default');
    });

    it('refuses a customer a group that is not selectable, naming group, while an admin may use it', async () => {
      await t.http
        .patch('/v1/admin/groups/image2Enterprise')
        .set(...adminHeaders(t))
        .send({ selectable: false })
        .expect(200);
      const before = await countTokens();
      const refused = await createMine(a.consoleKey, {
        name: 'enterprise',
        group: 'image2Enterprise',
      });
      expectErrorBody(refused, 400, 'validation_failed');
      expect(errorFields(refused)).toEqual(['group']);
      expect(await countTokens()).toBe(before);

      const byAdmin = await createAsAdmin(a.id, {
        name: 'enterprise',
        group: 'image2Enterprise',
      }).expect(201);
      expect(byAdmin.body.group).toBe('image2Enterprise');
      expect((await storedToken(byAdmin.body.id as string))?.group_name).toBe('image2Enterprise');
    });

    it('refuses a customer moving a token into a group that is not selectable', async () => {
      const created = await t.http
        .post('/v1/admin/groups')
        .set(...adminHeaders(t))
        .send({ name: 'hiddenTier', ratio: '0.5', selectable: false });
      expect(created.status).toBe(201);
      const token = await createMine(a.consoleKey, { name: 'mover' }).expect(201);
      const res = await patchMine(a.consoleKey, token.body.id as string, { group: 'hiddenTier' });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['group']);
      expect((await storedToken(token.body.id as string))?.group_name).toBe('default');
    });

    it.each<[string, () => Record<string, unknown>, string[]]>([
      ['no name', () => ({}), ['name']],
      ['an unknown group', () => ({ name: 'x', group: 'no-such-group' }), ['group']],
      ['an expiry in the past', () => ({ name: 'x', expiresAt: inHours(-1) }), ['expiresAt']],
      [
        'an expiry that is not a time',
        () => ({ name: 'x', expiresAt: 'next week' }),
        ['expiresAt'],
      ],
      ['a negative spend limit', () => ({ name: 'x', spendLimit: '-1.00' }), ['spendLimit']],
      ['a spend limit sent as a JSON number', () => ({ name: 'x', spendLimit: 5 }), ['spendLimit']],
      [
        'an allowed model that has no price',
        () => ({ name: 'x', allowedModels: ['unknown-model'] }),
        ['allowedModels.0'],
      ],
      [
        'an unpriced model after a priced one',
        () => ({ name: 'x', allowedModels: ['gpt-image-2', 'dall-e-9'] }),
        ['allowedModels.1'],
      ],
      [
        'allowedModels that is not a list',
        () => ({ name: 'x', allowedModels: 'gpt-image-2' }),
        ['allowedModels'],
      ],
      ['a field the API does not know', () => ({ name: 'x', spent: '100.00' }), ['spent']],
      [
        'several bad fields',
        () => ({ name: 'x', expiresAt: inHours(-1), spendLimit: 5 }),
        ['expiresAt', 'spendLimit'],
      ],
    ])(
      'refuses a token with %s with 400 naming the fields and creates nothing',
      async (_what, body, fields) => {
        const before = await countTokens();
        const res = await createMine(a.consoleKey, body());
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual([...fields].sort());
        expect(await countTokens()).toBe(before);
      },
    );

    it('answers 404 when an admin creates a token for an account that does not exist', async () => {
      const before = await countTokens();
      expectErrorBody(await createAsAdmin(randomUUID(), { name: 'ghost' }), 404, 'not_found');
      expect(await countTokens()).toBe(before);
    });
  });

  describe('changing tokens', () => {
    it('changes the name, spend limit, allowed models and expiry of a token', async () => {
      const created = await createMine(a.consoleKey, { name: 'before' }).expect(201);
      const id = created.body.id as string;
      const expiresAt = inHours(24);
      const res = await patchMine(a.consoleKey, id, {
        name: 'after',
        spendLimit: '12.34',
        allowedModels: ['gpt-image-2-all'],
        expiresAt,
      }).expect(200);
      expect(Object.keys(res.body).sort()).toEqual(TOKEN_KEYS);
      expect(res.body).toMatchObject({
        id,
        name: 'after',
        spendLimit: '12.34',
        allowedModels: ['gpt-image-2-all'],
        status: 'active',
        group: 'default',
      });
      expect(Date.parse(res.body.expiresAt as string)).toBe(Date.parse(expiresAt));

      const listed = ((await myTokens(a.consoleKey).expect(200)).body.data as Token[]).find(
        (x) => x.id === id,
      );
      expect(listed).toMatchObject({
        name: 'after',
        spendLimit: '12.34',
        allowedModels: ['gpt-image-2-all'],
      });
    });

    it('leaves the fields a PATCH does not name as they were', async () => {
      const created = await createMine(a.consoleKey, {
        name: 'partial',
        spendLimit: '3.00',
        allowedModels: ['gpt-image-2'],
      }).expect(201);
      const res = await patchMine(a.consoleKey, created.body.id as string, {
        name: 'partial renamed',
      }).expect(200);
      expect(res.body).toMatchObject({
        name: 'partial renamed',
        spendLimit: '3.00',
        allowedModels: ['gpt-image-2'],
      });
    });

    it('clears the spend limit, allowed models and expiry when they are set to null', async () => {
      const created = await createMine(a.consoleKey, {
        name: 'clearable',
        spendLimit: '5.00',
        allowedModels: ['gpt-image-2'],
        expiresAt: inHours(24),
      }).expect(201);
      const id = created.body.id as string;
      const res = await patchMine(a.consoleKey, id, {
        spendLimit: null,
        allowedModels: null,
        expiresAt: null,
      }).expect(200);
      expect(res.body).toMatchObject({
        name: 'clearable',
        spendLimit: null,
        allowedModels: null,
        expiresAt: null,
      });
      const row = await storedToken(id);
      expect(row).toMatchObject({ spend_limit: null, allowed_models: null, expires_at: null });
    });

    it.each<[string, Record<string, unknown>, string[]]>([
      ['a spend limit sent as a JSON number', { spendLimit: 10 }, ['spendLimit']],
      ['a negative spend limit', { spendLimit: '-0.01' }, ['spendLimit']],
      ['an expiry in the past', { expiresAt: '2020-01-01T00:00:00.000Z' }, ['expiresAt']],
      ['an unpriced allowed model', { allowedModels: ['unknown-model'] }, ['allowedModels.0']],
      ['an empty name', { name: '' }, ['name']],
      ['an unknown group', { group: 'no-such-group' }, ['group']],
    ])('refuses a change with %s with 400 and changes nothing', async (_what, body, fields) => {
      const created = await createMine(a.consoleKey, { name: 'steady', spendLimit: '1.00' }).expect(
        201,
      );
      const id = created.body.id as string;
      const before = await storedToken(id);
      const res = await patchMine(a.consoleKey, id, body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(fields);
      expect(await storedToken(id)).toEqual(before);
    });

    it('revokes a token with DELETE, keeping it in the list as revoked', async () => {
      const created = await createMine(a.consoleKey, { name: 'to revoke' }).expect(201);
      const id = created.body.id as string;
      const res = await deleteMine(a.consoleKey, id).expect(200);
      expect(res.body).toMatchObject({ id, name: 'to revoke', status: 'revoked' });
      expect(res.body).not.toHaveProperty('key');

      const listed = ((await myTokens(a.consoleKey).expect(200)).body.data as Token[]).find(
        (x) => x.id === id,
      );
      expect(listed?.status).toBe('revoked');
      expect((await storedToken(id))?.status).toBe('revoked');
    });

    it('refuses to change a revoked token with 409', async () => {
      const created = await createMine(a.consoleKey, { name: 'revoked then patched' }).expect(201);
      const id = created.body.id as string;
      await deleteMine(a.consoleKey, id).expect(200);
      const res = await patchMine(a.consoleKey, id, { name: 'revived?' });
      expectErrorBody(res, 409, 'conflict');
      expect(await storedToken(id)).toMatchObject({
        name: 'revoked then patched',
        status: 'revoked',
      });
    });
  });

  describe("another account's tokens", () => {
    it("refuses customer B changing customer A's token with 403 and changes nothing", async () => {
      const created = await createMine(a.consoleKey, { name: 'mine alone' }).expect(201);
      const id = created.body.id as string;
      expectErrorBody(await patchMine(b.consoleKey, id, { name: 'stolen' }), 403, 'forbidden');
      expect(await storedToken(id)).toMatchObject({ name: 'mine alone', status: 'active' });
    });

    it("refuses customer B revoking customer A's token with 403 and leaves it active", async () => {
      const created = await createMine(a.consoleKey, { name: 'not yours' }).expect(201);
      const id = created.body.id as string;
      expectErrorBody(await deleteMine(b.consoleKey, id), 403, 'forbidden');
      expect((await storedToken(id))?.status).toBe('active');
    });

    it("never lists customer A's tokens to customer B", async () => {
      await createMine(b.consoleKey, { name: 'B only' }).expect(201);
      const listA = (await myTokens(a.consoleKey).expect(200)).body.data as Token[];
      const listB = (await myTokens(b.consoleKey).expect(200)).body.data as Token[];
      expect(listB.map((x) => x.name)).toEqual(['B only']);
      const idsA = new Set(listA.map((x) => x.id));
      for (const x of listB) expect(idsA.has(x.id)).toBe(false);
    });

    it.each([
      ['a random id', () => randomUUID()],
      ['an id that is not a uuid', () => 'not-a-uuid'],
    ])('answers 404 for PATCH and DELETE of %s', async (_what, id) => {
      expectErrorBody(await patchMine(a.consoleKey, id(), { name: 'x' }), 404, 'not_found');
      expectErrorBody(await deleteMine(a.consoleKey, id()), 404, 'not_found');
    });
  });

  describe('keys and roles', () => {
    it('refuses the customer token routes without a key with 401', async () => {
      expectErrorBody(await t.http.get('/v1/me/tokens'), 401, 'unauthorized');
      expectErrorBody(await t.http.post('/v1/me/tokens').send({ name: 'x' }), 401, 'unauthorized');
    });

    it.each(['admin', 'gateway'] as const)(
      'refuses a %s key on /v1/me/tokens with 403',
      async (role) => {
        const key = role === 'admin' ? t.adminKey : t.gatewayKey;
        expectErrorBody(await t.http.get('/v1/me/tokens').set(...bearer(key)), 403, 'forbidden');
      },
    );

    it.each(['customer', 'gateway'] as const)(
      'refuses a %s key on the admin token routes with 403',
      async (role) => {
        const key = role === 'customer' ? a.consoleKey : t.gatewayKey;
        const before = await countTokens();
        expectErrorBody(
          await t.http.get(`/v1/admin/accounts/${a.id}/tokens`).set(...bearer(key)),
          403,
          'forbidden',
        );
        expectErrorBody(
          await t.http
            .post(`/v1/admin/accounts/${a.id}/tokens`)
            .set(...bearer(key))
            .send({ name: 'sneaky' }),
          403,
          'forbidden',
        );
        expect(await countTokens()).toBe(before);
      },
    );

    it('does not accept an sk- token as a customer key', async () => {
      const created = await createMine(a.consoleKey, { name: 'not a console key' }).expect(201);
      expectErrorBody(await myTokens(created.body.key as string), 401, 'unauthorized');
    });
  });

  describe('pagination', () => {
    it('lists every token exactly once, newest first, across pages of 2', async () => {
      const c = await createAccount(t, 'Customer C');
      const created: string[] = [];
      for (let i = 0; i < 5; i++) {
        created.push(
          (await createMine(c.consoleKey, { name: `paged ${i}` }).expect(201)).body.id as string,
        );
      }
      const seen: Token[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Response = await myTokens(
          c.consoleKey,
          cursor ? { limit: 2, cursor } : { limit: 2 },
        ).expect(200);
        expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...(res.body.data as Token[]));
        cursor = res.body.nextCursor as string | null;
        pages++;
        expect(pages).toBeLessThan(20);
      } while (cursor !== null);
      expect(pages).toBe(3);
      // Created one after another: the last created comes first.
      expect(seen.map((x) => x.id)).toEqual([...created].reverse());
      for (const x of seen) expect(x).not.toHaveProperty('key');
    });

    it('pages the admin token list the same way', async () => {
      const first = await t.http
        .get(`/v1/admin/accounts/${b.id}/tokens`)
        .query({ limit: 1 })
        .set(...adminHeaders(t))
        .expect(200);
      expect(first.body.data).toHaveLength(1);
      expect(first.body.nextCursor).toBeNull();
    });

    it.each([
      ['limit=0', { limit: 0 }, 'limit'],
      ['limit=501', { limit: 501 }, 'limit'],
      ['a cursor it did not hand out', { cursor: 'garbage' }, 'cursor'],
    ])('refuses %s with 400', async (_what, query, field) => {
      const res = await myTokens(a.consoleKey, query);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual([field]);
    });
  });
});
