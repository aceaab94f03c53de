import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { adminHeaders, createAccount, errorFields, expectErrorBody, ISO } from './helpers/api.js';
import { bearer, createTestApp, TestApp } from './helpers/test-app.js';

const TOKEN_FIELDS = ['inputText', 'inputImage', 'cachedInput', 'outputText', 'outputImage'];

interface PriceVersion {
  model: string;
  version: number;
  mode: string;
  inputText?: string | null;
  inputImage?: string | null;
  cachedInput?: string | null;
  outputText?: string | null;
  outputImage?: string | null;
  partialImageOutputTokens?: number | null;
  perRequest?: string | null;
  perImage?: string | null;
  referencePrices: { size: string; quality: string; price: string }[];
  effectiveFrom: string;
  createdAt: string;
}

/** A complete, valid tokens-mode body. */
const tokensBody = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  mode: 'tokens',
  inputText: '5',
  inputImage: '10',
  cachedInput: '1.25',
  outputText: '10',
  outputImage: '40',
  partialImageOutputTokens: 100,
  ...overrides,
});

const SEEDED_REFERENCE_PRICES = [
  { size: '1024x1024', quality: 'low', price: '0.006' },
  { size: '1024x1024', quality: 'medium', price: '0.053' },
  { size: '1024x1024', quality: 'high', price: '0.211' },
  { size: '1024x1536', quality: 'low', price: '0.005' },
  { size: '1024x1536', quality: 'medium', price: '0.041' },
  { size: '1024x1536', quality: 'high', price: '0.165' },
  { size: '1536x1024', quality: 'low', price: '0.005' },
  { size: '1536x1024', quality: 'medium', price: '0.041' },
  { size: '1536x1024', quality: 'high', price: '0.165' },
];

describe('models and prices', () => {
  let t: TestApp;
  let consoleKey: string;

  const listModels = async (key: string = t.adminKey): Promise<PriceVersion[]> => {
    const res = await t.http
      .get('/v1/models')
      .set(...bearer(key))
      .expect(200);
    return res.body.data as PriceVersion[];
  };
  const current = async (model: string): Promise<PriceVersion | undefined> =>
    (await listModels()).find((m) => m.model === model);

  const putPrice = (model: string, body: Record<string, unknown>, key: string = t.adminKey) =>
    t.http
      .put(`/v1/admin/models/${model}`)
      .set(...bearer(key))
      .send(body);

  const versions = (model: string, query: Record<string, string | number> = {}) =>
    t.http
      .get(`/v1/admin/models/${model}/versions`)
      .query(query)
      .set(...adminHeaders(t));

  const countVersions = async (): Promise<number> => {
    const r = await t.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM price_versions`);
    return r.rows[0].n;
  };
  const countModels = async (): Promise<number> => {
    const r = await t.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM models`);
    return r.rows[0].n;
  };

  beforeAll(async () => {
    t = await createTestApp();
    consoleKey = (await createAccount(t, 'Catalog reader')).consoleKey;
  });
  afterAll(async () => {
    await t.close();
  });

  describe('GET /v1/models', () => {
    it.each(['admin', 'gateway', 'customer'] as const)(
      'lists the three seeded models with their exact prices to a %s key',
      async (role) => {
        const key = role === 'admin' ? t.adminKey : role === 'gateway' ? t.gatewayKey : consoleKey;
        const models = await listModels(key);
        expect(models.map((m) => m.model).sort()).toEqual([
          'gpt-image-2',
          'gpt-image-2-all',
          'gpt-image-2-vip',
        ]);

        const image2 = models.find((m) => m.model === 'gpt-image-2')!;
        expect(image2).toMatchObject({
          mode: 'tokens',
          version: 1,
          inputText: '8',
          inputImage: '8',
          cachedInput: '2',
          outputText: '30',
          outputImage: '30',
          partialImageOutputTokens: 100,
        });
        expect(image2.referencePrices).toHaveLength(SEEDED_REFERENCE_PRICES.length);
        expect(image2.referencePrices).toEqual(expect.arrayContaining(SEEDED_REFERENCE_PRICES));
        expect(image2.perRequest ?? null).toBeNull();
        expect(image2.perImage ?? null).toBeNull();
        expect(image2.effectiveFrom).toMatch(ISO);
        expect(image2.createdAt).toMatch(ISO);

        const all = models.find((m) => m.model === 'gpt-image-2-all')!;
        expect(all).toMatchObject({ mode: 'per_request', version: 1, perRequest: '0.03' });
        expect(all.perImage ?? null).toBeNull();
        for (const f of TOKEN_FIELDS) expect(all[f as keyof PriceVersion] ?? null).toBeNull();

        const vip = models.find((m) => m.model === 'gpt-image-2-vip')!;
        expect(vip).toMatchObject({ mode: 'per_image', version: 1, perImage: '0.03' });
        expect(vip.perRequest ?? null).toBeNull();
        for (const f of TOKEN_FIELDS) expect(vip[f as keyof PriceVersion] ?? null).toBeNull();
      },
    );

    it('pages the model list in name order with a cursor, every model once', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/v1/models?limit=1${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await t.http
          .get(url)
          .set(...bearer(t.adminKey))
          .expect(200);
        expect(res.body.data).toHaveLength(1);
        seen.push(res.body.data[0].model);
        cursor = res.body.nextCursor;
      } while (cursor);
      const all = await t.http
        .get('/v1/models')
        .set(...bearer(t.adminKey))
        .expect(200);
      expect(all.body.nextCursor).toBeNull();
      expect(seen).toEqual(all.body.data.map((m: { model: string }) => m.model));
      expect(seen).toEqual([...seen].sort());
    });

    it('refuses the model list without a key with 401', async () => {
      expectErrorBody(await t.http.get('/v1/models'), 401, 'unauthorized');
    });

    it('refuses the model list with an unknown key with 401', async () => {
      expectErrorBody(
        await t.http.get('/v1/models').set(...bearer('sk-not-a-real-key')),
        401,
        'unauthorized',
      );
    });
  });

  describe('PUT /v1/admin/models/{model}', () => {
    it('makes a new price version effective at once when effectiveFrom is omitted', async () => {
      const before = Date.now();
      const res = await putPrice('gpt-image-2-all', { mode: 'per_request', perRequest: '0.04' });
      expect([200, 201]).toContain(res.status);
      expect(res.body).toMatchObject({
        model: 'gpt-image-2-all',
        version: 2,
        mode: 'per_request',
        perRequest: '0.04',
      });
      expect(Date.parse(res.body.effectiveFrom as string)).toBeGreaterThanOrEqual(before - 5_000);
      expect(Date.parse(res.body.effectiveFrom as string)).toBeLessThanOrEqual(Date.now() + 5_000);

      expect(await current('gpt-image-2-all')).toMatchObject({ version: 2, perRequest: '0.04' });
      const stored = await t.sql.query<{ version: number; per_request: string }>(
        `SELECT version, per_request::text FROM price_versions WHERE model = 'gpt-image-2-all' ORDER BY version`,
      );
      expect(stored.rows.map((r) => r.version)).toEqual([1, 2]);
    });

    it('lists a future version in the history while the current price stays in force', async () => {
      const effectiveFrom = new Date(Date.now() + 24 * 3600_000).toISOString();
      const res = await putPrice('gpt-image-2-vip', {
        mode: 'per_image',
        perImage: '0.05',
        effectiveFrom,
      });
      expect([200, 201]).toContain(res.status);
      expect(res.body).toMatchObject({ model: 'gpt-image-2-vip', version: 2, perImage: '0.05' });
      expect(Date.parse(res.body.effectiveFrom as string)).toBe(Date.parse(effectiveFrom));

      expect(await current('gpt-image-2-vip')).toMatchObject({ version: 1, perImage: '0.03' });

      const history = await versions('gpt-image-2-vip').expect(200);
      expect((history.body.data as PriceVersion[]).map((v) => [v.version, v.perImage])).toEqual([
        [2, '0.05'],
        [1, '0.03'],
      ]);
      expect(Date.parse((history.body.data as PriceVersion[])[0].effectiveFrom)).toBe(
        Date.parse(effectiveFrom),
      );
    });

    it('adds a model that had no price and lists it among the models', async () => {
      const res = await putPrice(
        'acme-image-1.5',
        tokensBody({ referencePrices: [{ size: '1024x1024', quality: 'high', price: '0.1' }] }),
      );
      expect([200, 201]).toContain(res.status);
      expect(res.body).toMatchObject({
        model: 'acme-image-1.5',
        version: 1,
        mode: 'tokens',
        cachedInput: '1.25',
      });

      const listed = await current('acme-image-1.5');
      expect(listed).toMatchObject({
        version: 1,
        mode: 'tokens',
        inputText: '5',
        inputImage: '10',
        cachedInput: '1.25',
        outputText: '10',
        outputImage: '40',
        partialImageOutputTokens: 100,
        referencePrices: [{ size: '1024x1024', quality: 'high', price: '0.1' }],
      });
      const history = await versions('acme-image-1.5').expect(200);
      expect(history.body.data).toHaveLength(1);
      expect(history.body.nextCursor).toBeNull();
    });

    it('keeps every digit of a price exactly as given', async () => {
      const res = await putPrice('acme-precise', { mode: 'per_image', perImage: '0.0350620001' });
      expect([200, 201]).toContain(res.status);
      expect((await current('acme-precise'))?.perImage).toBe('0.0350620001');
    });
  });

  describe('GET /v1/admin/models/{model}/versions', () => {
    it('lists every version newest first, one per page with a cursor', async () => {
      for (const p of ['0.05', '0.06']) {
        const r = await putPrice('gpt-image-2-all', { mode: 'per_request', perRequest: p });
        expect([200, 201]).toContain(r.status);
      }
      const stored = await t.sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM price_versions WHERE model = 'gpt-image-2-all'`,
      );
      const seen: PriceVersion[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Response = await versions(
          'gpt-image-2-all',
          cursor ? { limit: 1, cursor } : { limit: 1 },
        ).expect(200);
        expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
        expect(res.body.data).toHaveLength(1);
        seen.push(...(res.body.data as PriceVersion[]));
        cursor = res.body.nextCursor as string | null;
        pages++;
        expect(pages).toBeLessThan(20);
      } while (cursor !== null);

      expect(seen).toHaveLength(stored.rows[0].n);
      expect(seen.map((v) => v.version)).toEqual([4, 3, 2, 1]);
      expect(seen.map((v) => v.perRequest)).toEqual(['0.06', '0.05', '0.04', '0.03']);
      expect(await current('gpt-image-2-all')).toMatchObject({ version: 4, perRequest: '0.06' });
    });

    it('answers 404 for the versions of a model that was never priced', async () => {
      expectErrorBody(await versions('no-such-model'), 404, 'not_found');
    });

    it('refuses a cursor it did not hand out with 400', async () => {
      const res = await versions('gpt-image-2', { cursor: 'not-a-cursor' });
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['cursor']);
    });

    it.each([
      ['0', { limit: 0 }],
      ['501', { limit: 501 }],
    ])('refuses limit=%s with 400 naming limit', async (_what, query) => {
      const res = await versions('gpt-image-2', query);
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['limit']);
    });
  });

  describe('bad price input', () => {
    const past = (): string => new Date(Date.now() - 3600_000).toISOString();

    it.each<[string, string, () => Record<string, unknown>, string[]]>([
      [
        'a negative price',
        'gpt-image-2-all',
        () => ({ mode: 'per_request', perRequest: '-0.03' }),
        ['perRequest'],
      ],
      [
        'a price sent as a JSON number',
        'gpt-image-2-vip',
        () => ({ mode: 'per_image', perImage: 0.03 }),
        ['perImage'],
      ],
      [
        'a price that is not a number',
        'gpt-image-2',
        () => tokensBody({ inputText: 'abc' }),
        ['inputText'],
      ],
      [
        'a per-request price of zero',
        'gpt-image-2-all',
        () => ({ mode: 'per_request', perRequest: '0' }),
        ['perRequest'],
      ],
      [
        'a per-image price of zero',
        'gpt-image-2-vip',
        () => ({ mode: 'per_image', perImage: '0' }),
        ['perImage'],
      ],
      [
        'a negative token price',
        'gpt-image-2',
        () => tokensBody({ outputImage: '-30' }),
        ['outputImage'],
      ],
      [
        'a perImage price on a tokens model',
        'gpt-image-2',
        () => tokensBody({ perImage: '0.03' }),
        ['perImage'],
      ],
      [
        'token prices on a per_request model',
        'gpt-image-2-all',
        () => ({ mode: 'per_request', perRequest: '0.03', inputText: '8' }),
        ['inputText'],
      ],
      [
        'a tokens price missing outputImage',
        'gpt-image-2',
        () => tokensBody({ outputImage: undefined }),
        ['outputImage'],
      ],
      [
        'a per_request price missing perRequest',
        'gpt-image-2-all',
        () => ({ mode: 'per_request' }),
        ['perRequest'],
      ],
      ['no mode', 'gpt-image-2-all', () => ({ perRequest: '0.03' }), ['mode']],
      [
        'an unknown mode',
        'gpt-image-2-all',
        () => ({ mode: 'per_token', perRequest: '0.03' }),
        ['mode'],
      ],
      [
        'an effectiveFrom in the past',
        'gpt-image-2-all',
        () => ({ mode: 'per_request', perRequest: '0.03', effectiveFrom: past() }),
        ['effectiveFrom'],
      ],
      [
        'an effectiveFrom that is not a time',
        'gpt-image-2-all',
        () => ({ mode: 'per_request', perRequest: '0.03', effectiveFrom: 'tomorrow' }),
        ['effectiveFrom'],
      ],
      [
        'a field the API does not know',
        'gpt-image-2-all',
        () => ({ mode: 'per_request', perRequest: '0.03', discount: '0.5' }),
        ['discount'],
      ],
      [
        'a price with more than 10 decimal places',
        'gpt-image-2-vip',
        () => ({ mode: 'per_image', perImage: '0.00000000001' }),
        ['perImage'],
      ],
      [
        'a reference price sent as a JSON number',
        'gpt-image-2',
        () => tokensBody({ referencePrices: [{ size: '1024x1024', quality: 'high', price: 0.2 }] }),
        ['referencePrices.0.price'],
      ],
      [
        'the same reference size and quality twice',
        'gpt-image-2',
        () =>
          tokensBody({
            referencePrices: [
              { size: '1024x1024', quality: 'high', price: '0.2' },
              { size: '1024x1024', quality: 'high', price: '0.3' },
            ],
          }),
        ['referencePrices.1'],
      ],
      [
        'a model name with a space',
        'bad%20name',
        () => ({ mode: 'per_request', perRequest: '0.03' }),
        ['model'],
      ],
    ])(
      'refuses %s with 400 naming the field and writes nothing',
      async (_what, model, body, fields) => {
        const versionsBefore = await countVersions();
        const modelsBefore = await countModels();
        const res = await putPrice(model, body());
        expectErrorBody(res, 400, 'validation_failed');
        expect(errorFields(res)).toEqual([...fields].sort());
        expect(await countVersions()).toBe(versionsBefore);
        expect(await countModels()).toBe(modelsBefore);
      },
    );

    it('refuses a tokens price that is zero for all five kinds of token, naming a price field', async () => {
      const before = await countVersions();
      const zero = Object.fromEntries(TOKEN_FIELDS.map((f) => [f, '0']));
      const res = await putPrice('gpt-image-2', tokensBody(zero));
      expectErrorBody(res, 400, 'validation_failed');
      const fields = errorFields(res);
      expect(fields.length).toBeGreaterThan(0);
      for (const f of fields) expect(TOKEN_FIELDS).toContain(f);
      expect(await countVersions()).toBe(before);
      expect(await current('gpt-image-2')).toMatchObject({ version: 1, inputText: '8' });
    });

    it('names every failing field at once, format errors and mode errors together', async () => {
      const before = await countVersions();
      const res = await putPrice(
        'gpt-image-2',
        tokensBody({ inputText: '-1', outputText: 30, perRequest: '0.03' }),
      );
      expectErrorBody(res, 400, 'validation_failed');
      expect(errorFields(res)).toEqual(['inputText', 'outputText', 'perRequest']);
      expect(await countVersions()).toBe(before);
    });

    it('refuses a body that is not JSON with 400 and writes nothing', async () => {
      const before = await countVersions();
      const res = await t.http
        .put('/v1/admin/models/gpt-image-2-all')
        .set(...adminHeaders(t))
        .set('Content-Type', 'application/json')
        .send('{"mode": "per_request",');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toEqual(expect.any(String));
      expect(await countVersions()).toBe(before);
    });
  });

  describe('who may set prices', () => {
    it.each(['customer', 'gateway'] as const)(
      'refuses a %s key on PUT with 403 and writes nothing',
      async (role) => {
        const before = await countVersions();
        const key = role === 'customer' ? consoleKey : t.gatewayKey;
        const res = await putPrice(
          'gpt-image-2-all',
          { mode: 'per_request', perRequest: '0.01' },
          key,
        );
        expectErrorBody(res, 403, 'forbidden');
        expect(await countVersions()).toBe(before);
        expect((await current('gpt-image-2-all'))?.perRequest).not.toBe('0.01');
      },
    );

    it.each(['customer', 'gateway'] as const)(
      'refuses a %s key on the version history with 403',
      async (role) => {
        const key = role === 'customer' ? consoleKey : t.gatewayKey;
        const res = await t.http.get('/v1/admin/models/gpt-image-2/versions').set(...bearer(key));
        expectErrorBody(res, 403, 'forbidden');
      },
    );

    it('refuses PUT without a key with 401 and writes nothing', async () => {
      const before = await countVersions();
      const res = await t.http
        .put('/v1/admin/models/gpt-image-2-all')
        .send({ mode: 'per_request', perRequest: '0.01' });
      expectErrorBody(res, 401, 'unauthorized');
      expect(await countVersions()).toBe(before);
    });
  });
});
