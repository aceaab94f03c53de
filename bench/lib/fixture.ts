import type { AdminApi } from './admin.js';
import type { BenchConfig } from './config.js';
import { mapLimit } from './stats.js';

export interface BenchAccounts {
  accountIds: string[];
  tokenIds: string[];
  /** Each token's API key (sk-...), by account index. */
  tokenKeys: string[];
  setupSeconds: number;
}

/** The accounts through the API: each credited `initialCredit` by an adjustment, one token each. */
export async function createAccounts(admin: AdminApi, cfg: BenchConfig): Promise<BenchAccounts> {
  const t0 = performance.now();
  const accountIds: string[] = new Array<string>(cfg.accounts);
  const tokenIds: string[] = new Array<string>(cfg.accounts);
  const tokenKeys: string[] = new Array<string>(cfg.accounts);
  await mapLimit(
    Array.from({ length: cfg.accounts }, (_, i) => i),
    cfg.setupConcurrency,
    async (i) => {
      const acc = await admin('POST', '/v1/admin/accounts', { name: `bench ${i}` });
      accountIds[i] = acc.id;
      await admin(
        'POST',
        `/v1/admin/accounts/${acc.id}/adjustments`,
        { amount: cfg.initialCredit, reason: 'bench' },
        { 'idempotency-key': `bench-credit-${acc.id}` },
      );
      const tok = await admin<{ id: string; key: string }>(
        'POST',
        `/v1/admin/accounts/${acc.id}/tokens`,
        { name: 'bench' },
      );
      tokenIds[i] = tok.id;
      tokenKeys[i] = tok.key;
    },
  );
  return { accountIds, tokenIds, tokenKeys, setupSeconds: (performance.now() - t0) / 1000 };
}
