import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestApp, TestApp } from './helpers/test-app.js';

describe('operations', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers /health with 200 without a key once migrations ran', async () => {
    const res = await t.http.get('/health').expect(200);
    expect(res.body.status).toBe('ok');
    const migrations = await t.sql.query('SELECT name FROM migrations');
    expect(migrations.rowCount).toBeGreaterThan(0);
  });

  it('serves the OpenAPI spec at /docs-json and the page at /docs', async () => {
    const spec = await t.http.get('/docs-json').expect(200);
    expect(spec.body.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.body.paths)).toContain('/v1/admin/groups');
    const page = await t.http.get('/docs').expect(200);
    expect(page.text).toContain('swagger');
  });

  it('answers an unknown route with the contract error body', async () => {
    const res = await t.http.get('/v1/nope').set('Authorization', `Bearer ${t.adminKey}`).expect(404);
    expect(res.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
  });
});
