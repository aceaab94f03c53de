import type { TestApp } from '../helpers/test-app.js';

/*
 * The fuzz's context: the seed and budget that make a run reproducible, the resources created
 * in setup (real values for path parameters and valid bodies) and the key of each role.
 *
 * Reproducible: FUZZ_SEED picks the same cases every run (default below); FUZZ_BUDGET caps
 * the requests of each sampled category.
 */
export const SEED = Number(process.env.FUZZ_SEED ?? 20261106);
export const BUDGET = Number(process.env.FUZZ_BUDGET ?? 1);

/** mulberry32: small, fast and good enough to pick test cases; the same seed, the same run. */
export function prng(seed: number): {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  sample<T>(xs: readonly T[], n: number): T[];
} {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)],
    sample<T>(xs: readonly T[], n: number): T[] {
      const copy = [...xs];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [copy[i], copy[j]] = [copy[j], copy[i]];
      }
      return copy.slice(0, n);
    },
  };
}

export type Rng = ReturnType<typeof prng>;

export const seeded = (salt: number): Rng => prng(SEED + salt);
export const cap = (n: number): number => Math.max(1, Math.round(n * BUDGET));

export type Role = 'admin' | 'gateway' | 'customer' | 'any' | 'public';

/** The app under test and the resources created in setup, for path parameters and bodies. */
export class FuzzContext {
  accountId = '';
  consoleKey = '';
  otherAccountId = '';
  tokenId = '';
  spareTokenId = '';
  spareGroup = '';
  sparePromotionId = '';
  tokenKey = '';
  group = '';
  model = '';
  promotionId = '';
  topUpId = '';
  holdRequestId = '';
  reviewRequestId = '';
  reviewTopUpId = '';
  spareBatchId = '';
  /** Unredeemed codes: each valid redemption body takes one (a used code is invalid_code). */
  codes: string[] = [];
  private seq = 0;

  constructor(readonly t: TestApp) {}

  uniq(): string {
    return `${Date.now().toString(36)}${(this.seq++).toString(36)}`;
  }

  keyFor(role: Role): string | null {
    switch (role) {
      case 'admin':
        return this.t.adminKey;
      case 'gateway':
        return this.t.gatewayKey;
      case 'customer':
      case 'any':
        return this.consoleKey;
      case 'public':
        return null;
    }
  }

  wrongKeysFor(role: Role): string[] {
    const t = this.t;
    switch (role) {
      case 'admin':
        return [t.gatewayKey, this.consoleKey, this.tokenKey];
      case 'gateway':
        return [t.adminKey, this.consoleKey, this.tokenKey];
      case 'customer':
        return [t.adminKey, t.gatewayKey, this.tokenKey];
      case 'any':
      case 'public':
        return [];
    }
  }
}
