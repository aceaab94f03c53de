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
    const res = await t.http
      .get('/v1/nope')
      .set('Authorization', `Bearer ${t.adminKey}`)
      .expect(404);
    expect(res.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
  });

  it('answers a body that is not JSON with 400 invalid_json and no stack trace', async () => {
    const res = await t.http
      .post('/v1/admin/groups')
      .set('Authorization', `Bearer ${t.adminKey}`)
      .set('Content-Type', 'application/json')
      .send('{"name": "x",')
      .expect(400);
    expect(res.body).toEqual({
      error: { code: 'invalid_json', message: 'request body is not valid JSON' },
    });
  });

  it('answers a body over the size limit with 413 payload_too_large', async () => {
    const res = await t.http
      .post('/v1/usage-events/batch')
      .set('Authorization', `Bearer ${t.gatewayKey}`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ events: [], pad: 'x'.repeat(3 * 1024 * 1024) }))
      .expect(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });
});
