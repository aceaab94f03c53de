import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  adminHeaders,
  createAccount,
  createPromotion,
  errorFields,
  expectErrorCode,
} from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

describe('price quotes', () => {
  let t: TestApp;
  let seededPromotion: { id: string; name: string; rate: string };
  const quote = (query: Record<string, string | number>, key?: string) =>
    t.http
      .get('/v1/pricing/quote')
      .query(query)
      .set(...bearer(key ?? t.gatewayKey));

  beforeAll(async () => {
    t = await createTestApp();
    const promos = await t.http
      .get('/v1/admin/promotions')
      .set(...adminHeaders(t))
      .expect(200);
    const { id, name, rate } = promos.body.data[0];
    seededPromotion = { id, name, rate };
  });
  afterAll(async () => {
    await t.close();
  });

  it('quotes one high-quality 1024x1024 gpt-image-2 image at 0.211, 0.17935 in cash', async () => {
    const res = await quote({ model: 'gpt-image-2', size: '1024x1024', quality: 'high' }).expect(
      200,
    );
    expect(res.body).toEqual({
      model: 'gpt-image-2',
      mode: 'tokens',
      priceVersion: 1,
      size: '1024x1024',
      quality: 'high',
      n: 1,
      unitPrice: '0.211',
      listPrice: '0.211',
      group: 'default',
      ratio: '1.0',
      price: '0.211',
      promotion: { id: seededPromotion.id, name: '15% off top-ups', rate: '0.85' },
      cashPrice: '0.17935',
    });
  });

  it('quotes 5000 gpt-image-2-all requests at 150, 127.5 in cash', async () => {
    const res = await quote({ model: 'gpt-image-2-all', n: 5000 }).expect(200);
    expect(res.body).toMatchObject({
      model: 'gpt-image-2-all',
      mode: 'per_request',
      n: 5000,
      unitPrice: '0.03',
      listPrice: '150',
      ratio: '1.0',
      price: '150',
      cashPrice: '127.5',
    });
  });

  it.each([
    [{ model: 'gpt-image-2', size: '1024x1536', quality: 'low' }, '0.005', '0.00425'],
    [{ model: 'gpt-image-2', size: '1536x1024', quality: 'medium', n: 3 }, '0.123', '0.10455'],
    [{ model: 'gpt-image-2-vip', n: 3 }, '0.09', '0.0765'],
    [{ model: 'gpt-image-2-all' }, '0.03', '0.0255'],
    [{ model: 'gpt-image-2-vip', n: 100000 }, '3000', '2550'],
  ])('quotes %j exactly: list %s, cash %s', async (query, list, cash) => {
    const res = await quote(query).expect(200);
    expect(res.body.listPrice).toBe(list);
    expect(res.body.cashPrice).toBe(cash);
  });

  it('applies the group ratio: image2Enterprise at 1.2', async () => {
    const res = await quote({
      model: 'gpt-image-2',
      size: '1024x1024',
      quality: 'high',
      group: 'image2Enterprise',
    }).expect(200);
    expect(res.body).toMatchObject({
      listPrice: '0.211',
      group: 'image2Enterprise',
      ratio: '1.2',
      price: '0.2532',
      cashPrice: '0.21522',
    });
  });

  it('answers every role and no anonymous caller', async () => {
    const acc = await createAccount(t, 'Quoter');
    for (const key of [t.adminKey, t.gatewayKey, acc.consoleKey]) {
      const res = await quote({ model: 'gpt-image-2-all', n: 5000 }, key).expect(200);
      expect(res.body.cashPrice).toBe('127.5');
    }
    expectErrorCode(
      await t.http.get('/v1/pricing/quote').query({ model: 'gpt-image-2-all' }),
      401,
      'unauthorized',
    );
  });

  it.each([
    ['no model', {}, ['model']],
    ['an unpriced model', { model: 'dall-e-9' }, ['model']],
    ['a tokens model without size and quality', { model: 'gpt-image-2' }, ['quality', 'size']],
    ['a tokens model without quality', { model: 'gpt-image-2', size: '1024x1024' }, ['quality']],
    [
      'a size with no reference price',
      { model: 'gpt-image-2', size: '512x512', quality: 'high' },
      ['quality', 'size'],
    ],
    [
      'a quality with no reference price',
      { model: 'gpt-image-2', size: '1024x1024', quality: 'ultra' },
      ['quality', 'size'],
    ],
    ['a malformed size', { model: 'gpt-image-2', size: 'big', quality: 'high' }, ['size']],
    ['n = 0', { model: 'gpt-image-2-all', n: 0 }, ['n']],
    ['n above 100000', { model: 'gpt-image-2-all', n: 100001 }, ['n']],
    ['a fractional n', { model: 'gpt-image-2-all', n: '1.5' }, ['n']],
    ['a non-numeric n', { model: 'gpt-image-2-all', n: 'many' }, ['n']],
    ['an unknown group', { model: 'gpt-image-2-all', group: 'nope' }, ['group']],
    ['an unknown model and group', { model: 'nope', group: 'nope' }, ['group', 'model']],
    ['an unknown parameter', { model: 'gpt-image-2-all', discount: '1' }, ['discount']],
  ])('refuses %s with 400 naming the fields', async (_what, query, fields) => {
    const res = await quote(query);
    expectErrorCode(res, 400, 'validation_failed');
    expect(errorFields(res)).toEqual(fields);
  });

  it('hides groups a customer may not select, but not from an admin', async () => {
    await t.http
      .post('/v1/admin/groups')
      .set(...adminHeaders(t))
      .send({ name: 'internalOnly', ratio: '0.5', selectable: false })
      .expect(201);
    const acc = await createAccount(t, 'Curious');
    const q = { model: 'gpt-image-2-all', group: 'internalOnly' };
    const refused = await quote(q, acc.consoleKey);
    expectErrorCode(refused, 400, 'validation_failed');
    expect(errorFields(refused)).toEqual(['group']);
    expect((await quote(q, t.adminKey).expect(200)).body).toMatchObject({
      ratio: '0.5',
      price: '0.015',
    });
  });

  it('uses the lowest rate active now, whatever its minCredit, and the price when none is active', async () => {
    const create = async (body: Record<string, unknown>) => (await createPromotion(t, body)).id;
    const big = await create({ name: 'Big top-ups', rate: '0.7', minCredit: '1000' });
    const future = await create({
      name: 'Later',
      rate: '0.1',
      startsAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    try {
      const res = await quote({ model: 'gpt-image-2-all', n: 5000 }).expect(200);
      expect(res.body).toMatchObject({
        promotion: { id: big, name: 'Big top-ups', rate: '0.7' },
        cashPrice: '105',
      });
    } finally {
      for (const id of [big, future]) {
        await t.http
          .delete(`/v1/admin/promotions/${id}`)
          .set(...adminHeaders(t))
          .expect(204);
      }
    }

    await t.http
      .patch(`/v1/admin/promotions/${seededPromotion.id}`)
      .set(...adminHeaders(t))
      .send({ active: false })
      .expect(200);
    try {
      const none = await quote({ model: 'gpt-image-2', size: '1024x1024', quality: 'high' }).expect(
        200,
      );
      expect(none.body).toMatchObject({ price: '0.211', promotion: null, cashPrice: '0.211' });
    } finally {
      await t.http
        .patch(`/v1/admin/promotions/${seededPromotion.id}`)
        .set(...adminHeaders(t))
        .send({ active: true })
        .expect(200);
    }
  });

  it('follows a new price version at once', async () => {
    await t.http
      .put('/v1/admin/models/gpt-image-2-vip')
      .set(...adminHeaders(t))
      .send({ mode: 'per_image', perImage: '0.04' })
      .expect(200);
    const res = await quote({ model: 'gpt-image-2-vip', n: 10 }).expect(200);
    expect(res.body).toMatchObject({
      priceVersion: 2,
      unitPrice: '0.04',
      listPrice: '0.4',
      cashPrice: '0.34',
    });
  });
});
