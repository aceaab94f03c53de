import { describe, expect, it } from '@jest/globals';
import { formatExact, money } from '../common/money/money.js';
import {
  type BillingMode,
  type BreakdownLine,
  priceEvent,
  type PriceVersion,
  PricingError,
  type PricingResult,
  skipReason,
  type UsageEventInput,
  type UsageInput,
} from './pricing.js';

type Prices = Partial<Record<keyof PriceVersion, string | number | null>>;

function priceOf(mode: BillingMode, prices: Prices = {}): PriceVersion {
  const dec = (key: keyof PriceVersion) => {
    const value = prices[key];
    return value === undefined || value === null ? null : money(String(value));
  };
  return {
    id: 'pv-1',
    model: 'test-model',
    version: 1,
    mode,
    inputText: dec('inputText'),
    inputImage: dec('inputImage'),
    cachedInput: dec('cachedInput'),
    outputText: dec('outputText'),
    outputImage: dec('outputImage'),
    partialImageOutputTokens:
      typeof prices.partialImageOutputTokens === 'number' ? prices.partialImageOutputTokens : null,
    perRequest: dec('perRequest'),
    perImage: dec('perImage'),
  };
}

/** The seeded catalog, from the provider's published prices. */
const GPT_IMAGE_2 = priceOf('tokens', {
  inputText: '8',
  inputImage: '8',
  cachedInput: '2',
  outputImage: '30',
  outputText: '30',
  partialImageOutputTokens: 100,
});
const GPT_IMAGE_2_ALL = priceOf('per_request', { perRequest: '0.03' });
const GPT_IMAGE_2_VIP = priceOf('per_image', { perImage: '0.03' });

/** Distinct prices per kind, so a token billed at the wrong price changes the total. */
const SPLIT = priceOf('tokens', {
  inputText: '5',
  inputImage: '10',
  cachedInput: '1',
  outputText: '20',
  outputImage: '40',
  partialImageOutputTokens: 100,
});

const ok = (event: Partial<UsageEventInput> = {}): UsageEventInput => ({
  statusCode: 200,
  ...event,
});
const tokens = (usage: UsageInput, event: Partial<UsageEventInput> = {}): UsageEventInput =>
  ok({ usage, ...event });

function charged(result: PricingResult) {
  if (result.outcome !== 'charged') throw new Error(`expected a charge, got ${result.reason}`);
  return result;
}

function chargeOf(event: UsageEventInput, price: PriceVersion, ratio = '1'): string {
  return formatExact(charged(priceEvent(event, price, money(ratio))).charge);
}

function pricingErrorOf(fn: () => unknown): PricingError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PricingError) return err;
    throw err;
  }
  throw new Error('expected a PricingError');
}

describe('priceEvent', () => {
  describe('the provider example (gpt-image-2)', () => {
    const event = tokens({ inputTokens: 89, outputTokens: 1145 });

    it.each([
      ['1', '0.035062'],
      ['1.2', '0.0420744'],
      ['1.0', '0.035062'],
      ['0.85', '0.0298027'],
    ])('charges 89 input and 1,145 output tokens at ratio %s exactly %s', (ratio, expected) => {
      expect(chargeOf(event, GPT_IMAGE_2, ratio)).toBe(expected);
    });

    it('reports the subtotal before the ratio, the ratio, and one line per billed kind', () => {
      const result = charged(priceEvent(event, GPT_IMAGE_2, money('1.2')));
      expect(formatExact(result.subtotal)).toBe('0.035062');
      expect(formatExact(result.ratio)).toBe('1.2');
      expect(result.breakdown).toEqual([
        {
          item: 'input_text_tokens',
          quantity: '89',
          unitPrice: '8',
          unit: 'per_1m_tokens',
          amount: '0.000712',
        },
        {
          item: 'output_image_tokens',
          quantity: '1145',
          unitPrice: '30',
          unit: 'per_1m_tokens',
          amount: '0.03435',
        },
      ]);
    });
  });

  describe('token split', () => {
    // SPLIT prices per 1M: input text 5, input image 10, cached 1, output text 20, output image 40.
    it.each<[string, UsageInput, string]>([
      [
        'bills all input as text when inputTokensDetails is absent',
        { inputTokens: 1000, outputTokens: 1000 },
        '0.045',
      ],
      [
        'splits input into text and image by inputTokensDetails',
        {
          inputTokens: 1000,
          outputTokens: 1000,
          inputTokensDetails: { textTokens: 400, imageTokens: 600 },
        },
        '0.048',
      ],
      [
        'completes image input tokens when only textTokens is given',
        { inputTokens: 1000, outputTokens: 1000, inputTokensDetails: { textTokens: 400 } },
        '0.048',
      ],
      [
        'completes text input tokens when only imageTokens is given',
        { inputTokens: 1000, outputTokens: 1000, inputTokensDetails: { imageTokens: 600 } },
        '0.048',
      ],
      [
        'bills an unsplit input remainder as text',
        {
          inputTokens: 1000,
          outputTokens: 1000,
          inputTokensDetails: { textTokens: 300, imageTokens: 500 },
        },
        '0.0475',
      ],
      [
        'takes cached tokens from the text tokens first',
        {
          inputTokens: 1000,
          outputTokens: 1000,
          inputTokensDetails: { textTokens: 400, imageTokens: 600, cachedTokens: 300 },
        },
        '0.0468',
      ],
      [
        'takes cached tokens from the image tokens once the text tokens are used up',
        {
          inputTokens: 1000,
          outputTokens: 1000,
          inputTokensDetails: { textTokens: 400, imageTokens: 600, cachedTokens: 700 },
        },
        '0.0437',
      ],
      [
        'bills every input token at the cached price when all are cached',
        { inputTokens: 1000, outputTokens: 1000, inputTokensDetails: { cachedTokens: 1000 } },
        '0.041',
      ],
      [
        'bills all output as image tokens when outputTokensDetails is absent',
        { inputTokens: 0, outputTokens: 1000 },
        '0.04',
      ],
      [
        'splits output into text and image by outputTokensDetails',
        {
          inputTokens: 1000,
          outputTokens: 1000,
          outputTokensDetails: { textTokens: 250, imageTokens: 750 },
        },
        '0.04',
      ],
      [
        'completes image output tokens when only textTokens is given',
        { inputTokens: 1000, outputTokens: 1000, outputTokensDetails: { textTokens: 250 } },
        '0.04',
      ],
      [
        'completes text output tokens when only imageTokens is given',
        { inputTokens: 1000, outputTokens: 1000, outputTokensDetails: { imageTokens: 750 } },
        '0.04',
      ],
      [
        'bills an unsplit output remainder as image',
        {
          inputTokens: 1000,
          outputTokens: 1000,
          outputTokensDetails: { textTokens: 200, imageTokens: 700 },
        },
        '0.041',
      ],
    ])('%s', (_name, usage, expected) => {
      expect(chargeOf(tokens(usage), SPLIT)).toBe(expected);
    });

    it('shows cached tokens on their own line and leaves out lines with no tokens', () => {
      const usage = {
        inputTokens: 1000,
        outputTokens: 1000,
        inputTokensDetails: { textTokens: 400, imageTokens: 600, cachedTokens: 300 },
      };
      expect(charged(priceEvent(tokens(usage), SPLIT, money('1'))).breakdown).toEqual([
        {
          item: 'input_text_tokens',
          quantity: '100',
          unitPrice: '5',
          unit: 'per_1m_tokens',
          amount: '0.0005',
        },
        {
          item: 'input_image_tokens',
          quantity: '600',
          unitPrice: '10',
          unit: 'per_1m_tokens',
          amount: '0.006',
        },
        {
          item: 'cached_input_tokens',
          quantity: '300',
          unitPrice: '1',
          unit: 'per_1m_tokens',
          amount: '0.0003',
        },
        {
          item: 'output_image_tokens',
          quantity: '1000',
          unitPrice: '40',
          unit: 'per_1m_tokens',
          amount: '0.04',
        },
      ]);
    });

    it('shows output text tokens at the output text price', () => {
      const usage = {
        inputTokens: 0,
        outputTokens: 1000,
        outputTokensDetails: { textTokens: 250 },
      };
      expect(charged(priceEvent(tokens(usage), SPLIT, money('1'))).breakdown).toEqual([
        {
          item: 'output_text_tokens',
          quantity: '250',
          unitPrice: '20',
          unit: 'per_1m_tokens',
          amount: '0.005',
        },
        {
          item: 'output_image_tokens',
          quantity: '750',
          unitPrice: '40',
          unit: 'per_1m_tokens',
          amount: '0.03',
        },
      ]);
    });
  });

  describe('partial images', () => {
    it.each<[string, PriceVersion, number | null | undefined, string]>([
      ['adds 100 output image tokens per partial image on gpt-image-2', GPT_IMAGE_2, 2, '0.041062'],
      ['adds nothing when no partial image was streamed', GPT_IMAGE_2, 0, '0.035062'],
      ['treats absent partialImages as none', GPT_IMAGE_2, undefined, '0.035062'],
      ['treats null partialImages as none', GPT_IMAGE_2, null, '0.035062'],
      [
        'adds nothing for a model without partialImageOutputTokens',
        { ...GPT_IMAGE_2, partialImageOutputTokens: null },
        3,
        '0.035062',
      ],
    ])('%s', (_name, price, partialImages, expected) => {
      const event = tokens({ inputTokens: 89, outputTokens: 1145 }, { partialImages });
      expect(chargeOf(event, price)).toBe(expected);
    });

    it('prices the surcharge at the output image price on its own line', () => {
      const event = tokens({ inputTokens: 1000, outputTokens: 1000 }, { partialImages: 3 });
      const result = charged(priceEvent(event, SPLIT, money('1')));
      expect(formatExact(result.charge)).toBe('0.057');
      expect(result.breakdown.at(-1)).toEqual({
        item: 'partial_image_output_tokens',
        quantity: '300',
        unitPrice: '40',
        unit: 'per_1m_tokens',
        amount: '0.012',
      });
    });
  });

  describe('flat prices', () => {
    it.each<[string, PriceVersion, Partial<UsageEventInput>, string, string]>([
      [
        'charges gpt-image-2-all its request price times the ratio',
        GPT_IMAGE_2_ALL,
        {},
        '1.2',
        '0.036',
      ],
      [
        'charges a request once whatever images it returned',
        GPT_IMAGE_2_ALL,
        { images: 4 },
        '1',
        '0.03',
      ],
      [
        'ignores token usage on a per_request model',
        GPT_IMAGE_2_ALL,
        { usage: { inputTokens: 10, outputTokens: 10 }, partialImages: 2 },
        '1',
        '0.03',
      ],
      [
        'charges gpt-image-2-vip its image price times 3 images',
        GPT_IMAGE_2_VIP,
        { images: 3 },
        '1',
        '0.09',
      ],
      ['counts one image when images is absent', GPT_IMAGE_2_VIP, {}, '1', '0.03'],
      ['counts one image when images is null', GPT_IMAGE_2_VIP, { images: null }, '1', '0.03'],
      ['charges a free group nothing', GPT_IMAGE_2_VIP, { images: 3 }, '0', '0'],
    ])('%s', (_name, price, event, ratio, expected) => {
      expect(chargeOf(ok(event), price, ratio)).toBe(expected);
    });

    it.each<[string, PriceVersion, Partial<UsageEventInput>, BreakdownLine]>([
      [
        'per_request',
        GPT_IMAGE_2_ALL,
        {},
        { item: 'request', quantity: '1', unitPrice: '0.03', unit: 'per_request', amount: '0.03' },
      ],
      [
        'per_image',
        GPT_IMAGE_2_VIP,
        { images: 3 },
        { item: 'image', quantity: '3', unitPrice: '0.03', unit: 'per_image', amount: '0.09' },
      ],
    ])('shows the single %s line before the ratio', (_mode, price, event, line) => {
      const result = charged(priceEvent(ok(event), price, money('1.2')));
      expect(result.breakdown).toEqual([line]);
      expect(formatExact(result.subtotal)).toBe(line.amount);
    });
  });

  describe('where floating point would be wrong', () => {
    it.each<[string, PriceVersion, UsageEventInput, string, string]>([
      [
        '0.1 per request at ratio 3 is 0.3',
        priceOf('per_request', { perRequest: '0.1' }),
        ok(),
        '3',
        '0.3',
      ],
      [
        '0.1 per image for 3 images is 0.3',
        priceOf('per_image', { perImage: '0.1' }),
        ok({ images: 3 }),
        '1',
        '0.3',
      ],
      [
        '0.03 per image for 7 images at ratio 1.1 is 0.231',
        GPT_IMAGE_2_VIP,
        ok({ images: 7 }),
        '1.1',
        '0.231',
      ],
      [
        '0.07 per request at ratio 1.15 is 0.0805',
        priceOf('per_request', { perRequest: '0.07' }),
        ok(),
        '1.15',
        '0.0805',
      ],
      [
        'one token at 1 per 1M is one millionth',
        priceOf('tokens', { outputImage: '1' }),
        tokens({ inputTokens: 0, outputTokens: 1 }),
        '1',
        '0.000001',
      ],
      [
        'one token at 0.000001 per 1M is 10^-12 and not rounded away',
        priceOf('tokens', { outputImage: '0.000001' }),
        tokens({ inputTokens: 0, outputTokens: 1 }),
        '1',
        '0.000000000001',
      ],
      [
        'one token at 0.000001 per 1M at ratio 1.1 keeps every digit',
        priceOf('tokens', { outputImage: '0.000001' }),
        tokens({ inputTokens: 0, outputTokens: 1 }),
        '1.1',
        '0.0000000000011',
      ],
      [
        'three tokens at 0.1 per 1M is 0.0000003',
        priceOf('tokens', { outputImage: '0.1' }),
        tokens({ inputTokens: 0, outputTokens: 3 }),
        '1',
        '0.0000003',
      ],
      [
        '10^12 output tokens at 30 per 1M at ratio 1.2 is 36,000,000',
        GPT_IMAGE_2,
        tokens({ inputTokens: 0, outputTokens: 1_000_000_000_000 }),
        '1.2',
        '36000000',
      ],
      [
        '10^12 tokens at 30.000000001 per 1M at ratio 1.2 keeps the last digit',
        priceOf('tokens', { outputImage: '30.000000001' }),
        tokens({ inputTokens: 0, outputTokens: 1_000_000_000_000 }),
        '1.2',
        '36000000.0012',
      ],
      [
        'the largest safe token count is priced digit for digit',
        GPT_IMAGE_2,
        tokens({ inputTokens: Number.MAX_SAFE_INTEGER, outputTokens: 1 }),
        '1',
        '72057594037.927958',
      ],
      [
        '10^12 partial images of 100 tokens go beyond a safe integer and stay exact',
        GPT_IMAGE_2,
        tokens({ inputTokens: 0, outputTokens: 1 }, { partialImages: 1_000_000_000_000 }),
        '1',
        '3000000000.00003',
      ],
    ])('%s', (_name, price, event, ratio, expected) => {
      expect(chargeOf(event, price, ratio)).toBe(expected);
    });
  });

  describe('skipped events', () => {
    it.each<[string, UsageEventInput, PriceVersion, string]>([
      [
        'a moderated tokens event',
        tokens({ inputTokens: 89, outputTokens: 1145 }, { moderated: true }),
        GPT_IMAGE_2,
        'moderated',
      ],
      ['a failed per_request event', ok({ statusCode: 502 }), GPT_IMAGE_2_ALL, 'upstream_error'],
      ['a timed-out tokens event without usage', ok({ timedOut: true }), GPT_IMAGE_2, 'timeout'],
      ['a per_image event that returned 0 images', ok({ images: 0 }), GPT_IMAGE_2_VIP, 'no_output'],
    ])('charges nothing for %s', (_name, event, price, reason) => {
      const result = priceEvent(event, price, money('1.2'));
      expect(result.outcome).toBe('skipped');
      expect(result).toMatchObject({ reason });
      expect(formatExact(result.charge)).toBe('0');
    });

    it('charges a timed-out event that still reported usage', () => {
      const event = tokens({ inputTokens: 89, outputTokens: 1145 }, { timedOut: true });
      expect(chargeOf(event, GPT_IMAGE_2)).toBe('0.035062');
    });
  });

  describe('invalid usage', () => {
    it.each<[string, UsageEventInput, PriceVersion, string]>([
      ['no usage on a tokens model', ok(), GPT_IMAGE_2, 'usage'],
      ['null usage on a tokens model', ok({ usage: null }), GPT_IMAGE_2, 'usage'],
      [
        'input text and image tokens above inputTokens',
        tokens({
          inputTokens: 10,
          outputTokens: 5,
          inputTokensDetails: { textTokens: 6, imageTokens: 5 },
        }),
        GPT_IMAGE_2,
        'usage.inputTokensDetails',
      ],
      [
        'input text tokens alone above inputTokens',
        tokens({ inputTokens: 10, outputTokens: 5, inputTokensDetails: { textTokens: 11 } }),
        GPT_IMAGE_2,
        'usage.inputTokensDetails',
      ],
      [
        'cached tokens above inputTokens',
        tokens({ inputTokens: 10, outputTokens: 5, inputTokensDetails: { cachedTokens: 11 } }),
        GPT_IMAGE_2,
        'usage.inputTokensDetails.cachedTokens',
      ],
      [
        'output text and image tokens above outputTokens',
        tokens({
          inputTokens: 10,
          outputTokens: 5,
          outputTokensDetails: { textTokens: 3, imageTokens: 3 },
        }),
        GPT_IMAGE_2,
        'usage.outputTokensDetails',
      ],
      [
        'a negative token count',
        tokens({ inputTokens: -1, outputTokens: 5 }),
        GPT_IMAGE_2,
        'usage.inputTokens',
      ],
      [
        'a fractional token count',
        tokens({ inputTokens: 1, outputTokens: 1.5 }),
        GPT_IMAGE_2,
        'usage.outputTokens',
      ],
      ['a fractional image count', ok({ images: 1.5 }), GPT_IMAGE_2_VIP, 'images'],
      [
        'a negative partial image count',
        tokens({ inputTokens: 1, outputTokens: 1 }, { partialImages: -1 }),
        GPT_IMAGE_2,
        'partialImages',
      ],
      [
        'output text tokens on a model without an outputText price',
        tokens({ inputTokens: 1, outputTokens: 2, outputTokensDetails: { textTokens: 1 } }),
        { ...GPT_IMAGE_2, outputText: null },
        'model',
      ],
      ['a per_request model without perRequest', ok(), priceOf('per_request'), 'model'],
    ])('rejects %s', (_name, event, price, field) => {
      const err = pricingErrorOf(() => priceEvent(event, price, money('1')));
      expect(err.field).toBe(field);
    });

    it('says a tokens-priced model needs usage', () => {
      const err = pricingErrorOf(() => priceEvent(ok(), GPT_IMAGE_2, money('1')));
      expect(err.message).toBe('usage: is required for a tokens-priced model');
    });

    it('bills tokens of a kind whose price is missing only when there are none of them', () => {
      const price = { ...GPT_IMAGE_2, outputText: null, inputImage: null, cachedInput: null };
      expect(chargeOf(tokens({ inputTokens: 89, outputTokens: 1145 }), price)).toBe('0.035062');
    });

    it('refuses a negative ratio', () => {
      expect(() => priceEvent(ok(), GPT_IMAGE_2_ALL, money('-1'))).toThrow(RangeError);
    });
  });
});

describe('skipReason', () => {
  const usage: UsageInput = { inputTokens: 89, outputTokens: 1145 };

  it.each<[string, UsageEventInput, BillingMode, string | null]>([
    [
      'moderated on errorCode moderation_blocked with a 400',
      { statusCode: 400, errorCode: 'moderation_blocked' },
      'tokens',
      'moderated',
    ],
    [
      'moderated on errorCode moderation_blocked with a 200',
      { statusCode: 200, errorCode: 'moderation_blocked' },
      'per_image',
      'moderated',
    ],
    [
      'moderated on moderated true with a 200 and usage',
      { statusCode: 200, moderated: true, usage },
      'tokens',
      'moderated',
    ],
    [
      'moderated before upstream_error',
      { statusCode: 500, moderated: true },
      'per_request',
      'moderated',
    ],
    [
      'moderated before timeout and no_output',
      { statusCode: 200, moderated: true, timedOut: true, images: 0 },
      'per_image',
      'moderated',
    ],
    ['upstream_error on a 500', { statusCode: 500 }, 'per_request', 'upstream_error'],
    [
      'upstream_error on a 429 with another errorCode',
      { statusCode: 429, errorCode: 'rate_limited' },
      'tokens',
      'upstream_error',
    ],
    ['upstream_error on a 199', { statusCode: 199 }, 'per_image', 'upstream_error'],
    ['upstream_error on a 300', { statusCode: 300 }, 'per_image', 'upstream_error'],
    [
      'upstream_error before timeout',
      { statusCode: 504, timedOut: true },
      'tokens',
      'upstream_error',
    ],
    [
      'upstream_error before no_output',
      { statusCode: 500, images: 0, usage: { inputTokens: 5, outputTokens: 0 } },
      'tokens',
      'upstream_error',
    ],
    [
      'timeout when timed out with no usage',
      { statusCode: 200, timedOut: true },
      'tokens',
      'timeout',
    ],
    [
      'timeout when timed out with null usage',
      { statusCode: 200, timedOut: true, usage: null },
      'per_request',
      'timeout',
    ],
    [
      'timeout before no_output',
      { statusCode: 200, timedOut: true, images: 0 },
      'per_image',
      'timeout',
    ],
    [
      'no_output on 0 images for a per_image model',
      { statusCode: 200, images: 0 },
      'per_image',
      'no_output',
    ],
    [
      'no_output on 0 images for a per_request model',
      { statusCode: 200, images: 0 },
      'per_request',
      'no_output',
    ],
    [
      'no_output on 0 images for a tokens model, whatever its tokens',
      { statusCode: 200, images: 0, usage },
      'tokens',
      'no_output',
    ],
    [
      'no_output on 0 output tokens for a tokens model',
      { statusCode: 200, usage: { inputTokens: 89, outputTokens: 0 } },
      'tokens',
      'no_output',
    ],
    [
      'no_output on 0 output tokens that timed out',
      { statusCode: 200, timedOut: true, usage: { inputTokens: 89, outputTokens: 0 } },
      'tokens',
      'no_output',
    ],
    [
      'nothing for a timed-out event that reported usage',
      { statusCode: 200, timedOut: true, usage },
      'tokens',
      null,
    ],
    [
      'nothing for 0 output tokens on a per_request model',
      { statusCode: 200, usage: { inputTokens: 1, outputTokens: 0 } },
      'per_request',
      null,
    ],
    ['nothing for a per_image model with images absent', { statusCode: 200 }, 'per_image', null],
    [
      'nothing for a tokens model without usage (that is a 400)',
      { statusCode: 201 },
      'tokens',
      null,
    ],
    [
      'nothing on a 299 with moderated false',
      { statusCode: 299, moderated: false, errorCode: null },
      'per_request',
      null,
    ],
  ])('gives %s', (_name, event, mode, expected) => {
    expect(skipReason(event, mode)).toBe(expected);
  });
});
