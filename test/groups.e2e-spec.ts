import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import {
  adminHeaders,
  createAccount,
  errorFields,
  expectErrorBody,
  gatewayHeaders,
  ISO,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const GROUP_KEYS = [
  'createdAt',
  'description',
  'isDefault',
  'name',
  'ratio',
  'selectable',
  'updatedAt',
];

describe('admin groups', () => {
  let t: TestApp;

  const createGroup = async (body: Record<string, unknown>) =>
    t.http
      .post('/v1/admin/groups')
      .set(...adminHeaders(t))
      .send(body);

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('seeded groups', () => {
    it('has the default group with ratio 1.0 marked as the default', async () => {
      const res = await t.http
        .get('/v1/admin/groups/default')
        .set(...adminHeaders(t))
        .expect(200);
      expect(res.body).toMatchObject({ name: 'default', ratio: '1.0', isDefault: true });
    });

    it('has the image2Enterprise group with ratio 1.2 that is not the default', async () => {
      const res = await t.http
        .get('/v1/admin/groups/image2Enterprise')
        .set(...adminHeaders(t))
        .expect(200);
      expect(res.body).toMatchObject({ name: 'image2Enterprise', ratio: '1.2', isDefault: false });
    });

    it('lists both seeded groups, with exactly one default', async () => {
      const res = await t.http
        .get('/v1/admin/groups')
        .set(...adminHeaders(t))
        .expect(200);
      const names = (res.body.data as { name: string }[]).map((g) => g.name);
      expect(names).toEqual(expect.arrayContaining(['default', 'image2Enterprise']));
      expect((res.body.data as { isDefault: boolean }[]).filter((g) => g.isDefault)).toHaveLength(
        1,
      );
      expect(res.body.nextCursor).toBeNull();
    });
  });

  describe('create', () => {
    it('creates a group and answers 201 with exactly the contract fields', async () => {
      const res = await createGroup({
        name: 'fast-lane_1',
        ratio: '1.5',
        description: 'Fast lane',
        selectable: false,
      });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(GROUP_KEYS);
      expect(res.body).toEqual({
        name: 'fast-lane_1',
        ratio: '1.5',
        description: 'Fast lane',
        selectable: false,
        isDefault: false,
        createdAt: expect.stringMatching(ISO),
        updatedAt: expect.stringMatching(ISO),
      });
      const row = await t.sql.query(
        `SELECT ratio::text AS ratio, selectable, is_default FROM groups WHERE name = $1`,
        ['fast-lane_1'],
      );
      expect(row.rows[0]).toEqual({ ratio: '1.5000000000', selectable: false, is_default: false });
    });

    it('accepts the boundary ratios 100 and 0.0001', async () => {
      const high = await createGroup({ name: 'ratio-max', ratio: '100' });
      expect(high.status).toBe(201);
      expect(high.body.ratio).toBe('100.0');
      const low = await createGroup({ name: 'ratio-tiny', ratio: '0.0001' });
      expect(low.status).toBe(201);
      expect(low.body.ratio).toBe('0.0001');
    });

    it('refuses a taken name with 409', async () => {
      expectErrorBody(await createGroup({ name: 'default', ratio: '2' }), 409, 'conflict');
      expect((await createGroup({ name: 'twice', ratio: '1.1' })).status).toBe(201);
      expectErrorBody(await createGroup({ name: 'twice', ratio: '3' }), 409, 'conflict');
      const row = await t.sql.query(`SELECT ratio::text AS ratio FROM groups WHERE name = 'twice'`);
      expect(row.rows).toEqual([{ ratio: '1.1000000000' }]);
      const def = await t.sql.query(
        `SELECT ratio::text AS ratio FROM groups WHERE name = 'default'`,
      );
      expect(def.rows).toEqual([{ ratio: '1.0000000000' }]);
    });

    it.each([
      ['a name with a space', { name: 'bad name', ratio: '1.0' }, ['name']],
      ['a name with a dot', { name: 'bad.name', ratio: '1.0' }, ['name']],
      ['a name of 65 characters', { name: 'a'.repeat(65), ratio: '1.0' }, ['name']],
      ['an empty name', { name: '', ratio: '1.0' }, ['name']],
      ['a missing name', { ratio: '1.0' }, ['name']],
      ['a ratio sent as a JSON number', { name: 'num-ratio', ratio: 1.2 }, ['ratio']],
      ['a ratio of "0"', { name: 'zero-ratio', ratio: '0' }, ['ratio']],
      ['a ratio of "-1"', { name: 'neg-ratio', ratio: '-1' }, ['ratio']],
      ['a ratio of "100.01"', { name: 'big-ratio', ratio: '100.01' }, ['ratio']],
      ['a ratio of "abc"', { name: 'abc-ratio', ratio: 'abc' }, ['ratio']],
      ['a ratio in exponent form', { name: 'exp-ratio', ratio: '1e1' }, ['ratio']],
      ['a missing ratio', { name: 'no-ratio' }, ['ratio']],
      [
        'selectable as a string',
        { name: 'sel-str', ratio: '1.0', selectable: 'yes' },
        ['selectable'],
      ],
      ['an unknown field', { name: 'extra-field', ratio: '1.0', colour: 'red' }, ['colour']],
      ['a bad name and a bad ratio together', { name: 'bad name', ratio: 7 }, ['name', 'ratio']],
    ] as [string, Record<string, unknown>, string[]][])(
      'refuses %s with 400 naming the failing fields',
      async (_what, body, fields) => {
        const res = await createGroup(body);
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual([...fields].sort());
        if (typeof body.name === 'string') {
          const stored = await t.sql.query(`SELECT 1 FROM groups WHERE name = $1`, [body.name]);
          expect(stored.rowCount).toBe(0);
        }
      },
    );

    it('refuses a body that is not JSON with 400 and no stack trace', async () => {
      const res = await t.http
        .post('/v1/admin/groups')
        .set(...adminHeaders(t))
        .set('Content-Type', 'application/json')
        .send('{"name": "broken",');
      expect(res.status).toBe(400);
      expect(Object.keys(res.body)).toEqual(['error']);
      expect(JSON.stringify(res.body)).not.toMatch(/\.(ts|js):\d+/);
    });
  });

  describe('get, update and delete', () => {
    it('gets a group by name', async () => {
      await createGroup({ name: 'readable', ratio: '0.85', description: 'for reading' }).then((r) =>
        expect(r.status).toBe(201),
      );
      const res = await t.http
        .get('/v1/admin/groups/readable')
        .set(...adminHeaders(t))
        .expect(200);
      expect(Object.keys(res.body).sort()).toEqual(GROUP_KEYS);
      expect(res.body).toMatchObject({
        name: 'readable',
        ratio: '0.85',
        description: 'for reading',
        isDefault: false,
      });
    });

    it('answers 404 for an unknown group on get, patch and delete', async () => {
      expectErrorBody(
        await t.http.get('/v1/admin/groups/no-such-group').set(...adminHeaders(t)),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http
          .patch('/v1/admin/groups/no-such-group')
          .set(...adminHeaders(t))
          .send({ ratio: '2' }),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http
          .patch('/v1/admin/groups/no-such-group')
          .set(...adminHeaders(t))
          .send({ isDefault: true }),
        404,
        'not_found',
      );
      expectErrorBody(
        await t.http.delete('/v1/admin/groups/no-such-group').set(...adminHeaders(t)),
        404,
        'not_found',
      );
      const def = await t.sql.query(`SELECT name FROM groups WHERE is_default`);
      expect(def.rows).toEqual([{ name: 'default' }]);
    });

    it('updates ratio, description and selectable', async () => {
      const created = await createGroup({
        name: 'patchable',
        ratio: '1.1',
        description: 'before',
        selectable: true,
      });
      expect(created.status).toBe(201);
      const res = await t.http
        .patch('/v1/admin/groups/patchable')
        .set(...adminHeaders(t))
        .send({ ratio: '2.25', description: 'after', selectable: false })
        .expect(200);
      expect(res.body).toMatchObject({
        name: 'patchable',
        ratio: '2.25',
        description: 'after',
        selectable: false,
        isDefault: false,
        createdAt: created.body.createdAt,
      });
      expect(Date.parse(res.body.updatedAt)).toBeGreaterThanOrEqual(
        Date.parse(created.body.updatedAt),
      );
      const again = await t.http
        .get('/v1/admin/groups/patchable')
        .set(...adminHeaders(t))
        .expect(200);
      expect(again.body).toEqual(res.body);
    });

    it('leaves fields not named in a patch unchanged', async () => {
      await createGroup({
        name: 'partial',
        ratio: '1.3',
        description: 'keep me',
        selectable: false,
      });
      const res = await t.http
        .patch('/v1/admin/groups/partial')
        .set(...adminHeaders(t))
        .send({ ratio: '1.4' })
        .expect(200);
      expect(res.body).toMatchObject({ ratio: '1.4', description: 'keep me', selectable: false });
    });

    it.each([
      ['a ratio sent as a JSON number', { ratio: 2 }, ['ratio']],
      ['a ratio of "0"', { ratio: '0' }, ['ratio']],
      ['a ratio of "100.01"', { ratio: '100.01' }, ['ratio']],
      ['a rename (name is not patchable)', { name: 'renamed' }, ['name']],
      ['selectable as a string', { selectable: 'no' }, ['selectable']],
    ])('refuses a patch with %s with 400 naming the field', async (_what, body, fields) => {
      const res = await t.http
        .patch('/v1/admin/groups/image2Enterprise')
        .set(...adminHeaders(t))
        .send(body);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(fields);
      const row = await t.sql.query(
        `SELECT ratio::text AS ratio, selectable FROM groups WHERE name = 'image2Enterprise'`,
      );
      expect(row.rows).toEqual([{ ratio: '1.2000000000', selectable: true }]);
    });

    it('moves the default when another group is made the default', async () => {
      expect((await createGroup({ name: 'next-default', ratio: '1.0' })).status).toBe(201);
      const res = await t.http
        .patch('/v1/admin/groups/next-default')
        .set(...adminHeaders(t))
        .send({ isDefault: true })
        .expect(200);
      expect(res.body.isDefault).toBe(true);
      const old = await t.http
        .get('/v1/admin/groups/default')
        .set(...adminHeaders(t))
        .expect(200);
      expect(old.body.isDefault).toBe(false);
      const defaults = await t.sql.query(`SELECT name FROM groups WHERE is_default`);
      expect(defaults.rows).toEqual([{ name: 'next-default' }]);

      // Move it back so the rest of the file sees the seeded default again.
      await t.http
        .patch('/v1/admin/groups/default')
        .set(...adminHeaders(t))
        .send({ isDefault: true })
        .expect(200);
      const back = await t.sql.query(`SELECT name FROM groups WHERE is_default`);
      expect(back.rows).toEqual([{ name: 'default' }]);
    });

    it('refuses to unset isDefault with 400, keeping the default in place', async () => {
      const res = await t.http
        .patch('/v1/admin/groups/default')
        .set(...adminHeaders(t))
        .send({ isDefault: false });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['isDefault']);
      const defaults = await t.sql.query(`SELECT name FROM groups WHERE is_default`);
      expect(defaults.rows).toEqual([{ name: 'default' }]);
    });

    it('deletes an unused group with 204, after which it is 404', async () => {
      expect((await createGroup({ name: 'doomed', ratio: '1.0' })).status).toBe(201);
      const res = await t.http
        .delete('/v1/admin/groups/doomed')
        .set(...adminHeaders(t))
        .expect(204);
      expect(res.text).toBe('');
      expectErrorBody(
        await t.http.get('/v1/admin/groups/doomed').set(...adminHeaders(t)),
        404,
        'not_found',
      );
      const row = await t.sql.query(`SELECT 1 FROM groups WHERE name = 'doomed'`);
      expect(row.rowCount).toBe(0);
    });

    it('refuses to delete the default group with 409', async () => {
      expectErrorBody(
        await t.http.delete('/v1/admin/groups/default').set(...adminHeaders(t)),
        409,
        'conflict',
      );
      const row = await t.sql.query(`SELECT is_default FROM groups WHERE name = 'default'`);
      expect(row.rows).toEqual([{ is_default: true }]);
    });

    // Needs POST /v1/admin/accounts/{id}/tokens (the tokens module); it fails until that exists.
    it('refuses to delete a group that an API token still uses with 409', async () => {
      expect((await createGroup({ name: 'in-use', ratio: '1.7' })).status).toBe(201);
      const account = await createAccount(t, 'Group user');
      const token = await t.http
        .post(`/v1/admin/accounts/${account.id}/tokens`)
        .set(...adminHeaders(t))
        .send({ name: 'uses in-use', group: 'in-use' });
      expect(token.status).toBe(201);
      expect(token.body.group).toBe('in-use');

      expectErrorBody(
        await t.http.delete('/v1/admin/groups/in-use').set(...adminHeaders(t)),
        409,
        'conflict',
      );
      await t.http
        .get('/v1/admin/groups/in-use')
        .set(...adminHeaders(t))
        .expect(200);
    });
  });

  describe('list pagination', () => {
    it('returns every group exactly once, newest first, across pages of 2', async () => {
      for (let i = 0; i < 5; i++) {
        expect((await createGroup({ name: `page-${i}`, ratio: '1.0' })).status).toBe(201);
      }
      const stored = await t.sql.query<{ name: string }>(`SELECT name FROM groups`);

      const seen: { name: string; createdAt: string }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Response = await t.http
          .get('/v1/admin/groups')
          .query(cursor ? { limit: 2, cursor } : { limit: 2 })
          .set(...adminHeaders(t))
          .expect(200);
        expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...(res.body.data as { name: string; createdAt: string }[]));
        cursor = res.body.nextCursor as string | null;
        pages++;
        expect(pages).toBeLessThan(100);
      } while (cursor !== null);

      const names = seen.map((g) => g.name);
      expect(new Set(names).size).toBe(names.length);
      expect([...names].sort()).toEqual(stored.rows.map((r) => r.name).sort());
      expect(pages).toBe(Math.ceil(stored.rows.length / 2));
      for (let i = 1; i < seen.length; i++) {
        expect(Date.parse(seen[i - 1].createdAt)).toBeGreaterThanOrEqual(
          Date.parse(seen[i].createdAt),
        );
      }
      // Created one after another, so page-4 (newest) comes before page-0.
      const order = ['page-4', 'page-3', 'page-2', 'page-1', 'page-0'].map((n) => names.indexOf(n));
      expect(order).toEqual([...order].sort((a, b) => a - b));
    });

    it.each([
      ['a random string', 'not-a-cursor'],
      [
        'base64 JSON of the wrong shape',
        Buffer.from(JSON.stringify({ a: 1 })).toString('base64url'),
      ],
      ['base64 of a one-element key', Buffer.from(JSON.stringify(['x'])).toString('base64url')],
    ])('refuses %s as a cursor with 400 naming cursor', async (_what, cursor) => {
      const res = await t.http
        .get('/v1/admin/groups')
        .query({ cursor })
        .set(...adminHeaders(t));
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['cursor']);
    });

    it.each(['0', '501', '-1', 'abc', '1.5'])(
      'refuses limit=%s with 400 naming limit',
      async (limit) => {
        const res = await t.http
          .get('/v1/admin/groups')
          .query({ limit })
          .set(...adminHeaders(t));
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual(['limit']);
      },
    );

    it('accepts limit 1 and 500', async () => {
      const one = await t.http
        .get('/v1/admin/groups')
        .query({ limit: 1 })
        .set(...adminHeaders(t))
        .expect(200);
      expect(one.body.data).toHaveLength(1);
      expect(one.body.nextCursor).toEqual(expect.any(String));
      const all = await t.http
        .get('/v1/admin/groups')
        .query({ limit: 500 })
        .set(...adminHeaders(t))
        .expect(200);
      const count = await t.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM groups`);
      expect(all.body.data).toHaveLength(Number(count.rows[0].n));
      expect(all.body.nextCursor).toBeNull();
    });
  });

  describe('roles', () => {
    it('answers 401 without a key', async () => {
      expectErrorBody(await t.http.get('/v1/admin/groups'), 401, 'unauthorized');
      expectErrorBody(
        await t.http.post('/v1/admin/groups').send({ name: 'nokey', ratio: '1.0' }),
        401,
        'unauthorized',
      );
      const row = await t.sql.query(`SELECT 1 FROM groups WHERE name = 'nokey'`);
      expect(row.rowCount).toBe(0);
    });

    it('answers 401 for an unknown key or a malformed header', async () => {
      expectErrorBody(
        await t.http.get('/v1/admin/groups').set(...bearer('admin_not-a-real-key')),
        401,
        'unauthorized',
      );
      expectErrorBody(
        await t.http.get('/v1/admin/groups').set(...bearer('ck_not-a-real-key')),
        401,
        'unauthorized',
      );
      expectErrorBody(
        await t.http.get('/v1/admin/groups').set('Authorization', `Basic ${t.adminKey}`),
        401,
        'unauthorized',
      );
    });

    it('answers 403 to the gateway key on an admin route', async () => {
      expectErrorBody(
        await t.http.get('/v1/admin/groups').set(...gatewayHeaders(t)),
        403,
        'forbidden',
      );
      const res = await t.http
        .delete('/v1/admin/groups/image2Enterprise')
        .set(...gatewayHeaders(t));
      expectErrorBody(res, 403, 'forbidden');
      const row = await t.sql.query(`SELECT 1 FROM groups WHERE name = 'image2Enterprise'`);
      expect(row.rowCount).toBe(1);
    });

    it('answers 403 to a customer console key on an admin route', async () => {
      const account = await createAccount(t, 'Curious customer');
      const res = await t.http
        .post('/v1/admin/groups')
        .set(...bearer(account.consoleKey))
        .send({ name: 'customer-made', ratio: '0.1' });
      expectErrorBody(res, 403, 'forbidden');
      const row = await t.sql.query(`SELECT 1 FROM groups WHERE name = 'customer-made'`);
      expect(row.rowCount).toBe(0);
    });
  });
});
