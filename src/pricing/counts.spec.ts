import { describe, expect, it } from '@jest/globals';
import { usageCounts } from './counts.js';

describe(usageCounts.name, () => {
  it.each([
    [
      'a charged event without images counts one image',
      { statusCode: 200 },
      true,
      { inputTokens: 0, outputTokens: 0, images: 1 },
    ],
    [
      'a charged event counts the images it returned',
      { statusCode: 200, images: 3 },
      true,
      { inputTokens: 0, outputTokens: 0, images: 3 },
    ],
    [
      'a skipped event counts its tokens but no image',
      { statusCode: 500, images: 2, usage: { inputTokens: 5, outputTokens: 7 } },
      false,
      { inputTokens: 5, outputTokens: 7, images: 0 },
    ],
    [
      'a charged tokens event counts its tokens',
      { statusCode: 200, usage: { inputTokens: 89, outputTokens: 1145 } },
      true,
      { inputTokens: 89, outputTokens: 1145, images: 1 },
    ],
  ])('%s', (_what, event, billable, expected) => {
    expect(usageCounts(event, billable)).toEqual(expected);
  });
});
