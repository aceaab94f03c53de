import { describe, expect, it } from '@jest/globals';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { AUTHORIZE_SHAPE, AuthorizeDto } from '../../tokens/dto/token.dto.js';
import { USAGE_EVENT_SHAPE, UsageEventDto } from '../../usage/dto/usage-event.dto.js';
import { canonicalJson } from './canonical-json.js';
import { rng } from '../../../faults/lib/rng.js';
import { passes, Shape } from './fast-check.js';

const ODD: unknown[] = [
  null,
  '',
  ' ',
  'x',
  '1',
  -1,
  0,
  1,
  1.5,
  99,
  100,
  599,
  600,
  10000,
  10001,
  1e12,
  1e12 + 1,
  1e13,
  Number.MAX_SAFE_INTEGER,
  true,
  false,
  {},
  [],
  [1],
  { inputTokens: 1, outputTokens: 2 },
  'a'.repeat(32),
  'a'.repeat(33),
  'a'.repeat(100),
  'a'.repeat(101),
  'a'.repeat(200),
  'a'.repeat(201),
  'a'.repeat(512),
  'a'.repeat(513),
  'req with space',
  'é',
  '😀'.repeat(20),
  '1024x1024',
  'gpt-image-2',
  'model/with/slash',
  '2026-12-02T01:02:03Z',
  '2026-12-02T01:02:03.123456Z',
  '2026-02-30T01:02:03Z',
  '2026-12-02T24:00:00Z',
  '2026-12-02 01:02:03Z',
  '2026-12-02T01:02:03+01:00',
  '0000-01-01T00:00:00Z',
  '00000000-0000-0000-0000-000000000000',
  '3b241101-e2bb-4255-8caf-4136c566a962',
  '3B241101-E2BB-4255-8CAF-4136C566A962',
  '3b241101-e2bb-9255-8caf-4136c566a962',
];

type Rnd = () => number;
const pick = <T>(r: Rnd, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

/** Replaces, adds or removes one field at some depth of a copy of `base`. */
function mutate(base: Record<string, unknown>, r: Rnd): Record<string, unknown> {
  const copy = structuredClone(base);
  let target: Record<string, unknown> = copy;
  // Sometimes go one or two levels down into a nested object.
  for (let d = 0; d < 2 && r() < 0.4; d++) {
    const nested = Object.entries(target).filter(
      ([, v]) => v !== null && typeof v === 'object' && !Array.isArray(v),
    );
    if (nested.length === 0) break;
    target = pick(r, nested)[1] as Record<string, unknown>;
  }
  const keys = Object.keys(target);
  const roll = r();
  if (roll < 0.1 || keys.length === 0) target[pick(r, ['extra', 'constructor', 'usage2'])] = 1;
  else if (roll < 0.2) delete target[pick(r, keys)];
  else target[pick(r, keys)] = pick(r, ODD);
  return copy;
}

async function classValidatorAccepts(
  raw: Record<string, unknown>,
  metatype: new () => object,
): Promise<boolean> {
  const instance = plainToInstance(metatype, raw);
  const errors = await validate(instance, { whitelist: true, forbidNonWhitelisted: true });
  // The fast path passes the body on as it came: the DTO must hold exactly the same data.
  return errors.length === 0 && canonicalJson(instance) === canonicalJson(raw);
}

async function check(
  bases: Record<string, unknown>[],
  shape: Shape,
  metatype: new () => object,
  seed: number,
): Promise<{ fast: number; total: number }> {
  const seeded = rng(seed);
  const r: Rnd = () => seeded.next();
  let fast = 0;
  let total = 0;
  const cases = [...bases];
  for (let i = 0; i < 4000; i++) cases.push(mutate(pick(r, bases), r));
  for (const c of cases) {
    total++;
    if (!passes(c, shape)) continue;
    fast++;
    // Whatever the fast check vouches for, class-validator accepts unchanged.
    if (!(await classValidatorAccepts(c, metatype)))
      throw new Error(`fast check accepted a body class-validator refuses: ${JSON.stringify(c)}`);
  }
  return { fast, total };
}

describe('fast body checks', () => {
  it('vouch only for usage events the UsageEventDto accepts as they are', async () => {
    const tokenId = '3b241101-e2bb-4255-8caf-4136c566a962';
    const bases = [
      { requestId: 'req-1', tokenId, model: 'gpt-image-2', statusCode: 200 },
      {
        requestId: 'req-2',
        tokenId,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: {
          inputTokens: 300,
          outputTokens: 1200,
          inputTokensDetails: { textTokens: 100, imageTokens: 200, cachedTokens: 50 },
          outputTokensDetails: { textTokens: 20, imageTokens: 1180 },
        },
        partialImages: 2,
        occurredAt: '2026-12-02T01:02:03.123Z',
      },
      {
        requestId: 'req-3',
        tokenId,
        model: 'gpt-image-2-vip',
        statusCode: 429,
        errorCode: 'moderation_blocked',
        moderated: true,
        timedOut: false,
        images: 2,
        size: '1024x1024',
        quality: 'high',
      },
    ];
    const { fast, total } = await check(bases, USAGE_EVENT_SHAPE, UsageEventDto, 1);
    // Not vacuous: the common body takes the fast path, odd ones do not.
    expect(fast).toBeGreaterThan(total / 10);
    expect(fast).toBeLessThan(total);
    for (const b of bases) expect(passes(b, USAGE_EVENT_SHAPE)).toBe(true);
  });

  it('vouch only for authorize bodies the AuthorizeDto accepts as they are', async () => {
    const bases = [
      { key: 'sk-abc', model: 'gpt-image-2' },
      {
        key: 'sk-abc',
        model: 'gpt-image-2',
        requestId: 'r1',
        n: 2,
        size: '1024x1024',
        quality: 'high',
      },
    ];
    const { fast, total } = await check(bases, AUTHORIZE_SHAPE, AuthorizeDto, 2);
    expect(fast).toBeGreaterThan(total / 10);
    expect(fast).toBeLessThan(total);
  });

  it('refuse what is not a plain object', () => {
    for (const v of [null, [], 'x', 1, new Date(), Object.create({ requestId: 'x' })])
      expect(passes(v, USAGE_EVENT_SHAPE)).toBe(false);
  });
});
