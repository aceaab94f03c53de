/** The accounts and tokens a run sets up through the API. */
import type { HttpClient } from '../../bench/lib/load.js';
import { mapLimit } from '../../bench/lib/stats.js';
import { Dec } from './env.js';
import { callJson } from './http.js';

/** The seeded groups' ratios, from the contract (not read back from the service). */
export const GROUP_RATIOS: Record<string, string> = { default: '1.0', image2Enterprise: '1.2' };

export interface TokenFx {
  id: string;
  key: string;
  group: string;
  ratio: Dec;
  account: number;
}

export interface AccountFx {
  id: string;
  consoleKey: string;
  credit: Dec;
  tokens: number[];
}

export interface Fixture {
  accounts: AccountFx[];
  tokens: TokenFx[];
}

/**
 * Accounts, each credited once by an adjustment (with an Idempotency-Key) and given tokens:
 * the first in the default group, any further ones in image2Enterprise.
 */
export async function setupAccounts(o: {
  clients: HttpClient[];
  adminKey: string;
  accounts: number;
  tokensPerAccount: number;
  credit: (i: number) => string;
  tag: string;
}): Promise<Fixture> {
  const accounts = new Array<AccountFx>(o.accounts);
  await mapLimit(
    Array.from({ length: o.accounts }, (_, i) => i),
    16,
    async (i) => {
      const client = o.clients[i % o.clients.length];
      const acc = await callJson<{ id: string; consoleKey: string }>(
        client,
        o.adminKey,
        'POST',
        '/v1/admin/accounts',
        { name: `${o.tag} ${i}` },
      );
      const credit = o.credit(i);
      await callJson(
        client,
        o.adminKey,
        'POST',
        `/v1/admin/accounts/${acc.id}/adjustments`,
        { amount: credit, reason: `${o.tag} opening credit` },
        { 'idempotency-key': `${o.tag}-credit-${acc.id}` },
      );
      accounts[i] = { id: acc.id, consoleKey: acc.consoleKey, credit: new Dec(credit), tokens: [] };
    },
  );
  const tokens: TokenFx[] = [];
  for (let i = 0; i < o.accounts; i++) {
    for (let t = 0; t < o.tokensPerAccount; t++) {
      const group = t === 0 ? 'default' : 'image2Enterprise';
      const tok = await callJson<{ id: string; key: string; group: string }>(
        o.clients[(i + t) % o.clients.length],
        o.adminKey,
        'POST',
        `/v1/admin/accounts/${accounts[i].id}/tokens`,
        t === 0 ? { name: `${o.tag} ${i}.${t}` } : { name: `${o.tag} ${i}.${t}`, group },
      );
      if (tok.group !== group) throw new Error(`token ${tok.id} is in ${tok.group}, not ${group}`);
      accounts[i].tokens.push(tokens.length);
      tokens.push({
        id: tok.id,
        key: tok.key,
        group,
        ratio: new Dec(GROUP_RATIOS[group]),
        account: i,
      });
    }
  }
  return { accounts, tokens };
}
