import { Decimal } from 'decimal.js';
import type { AdminApi } from './admin.js';
import type { BenchConfig } from './config.js';
import { fmtInt } from './report.js';
import { mapLimit } from './stats.js';

export interface BalancesCheck {
  /** Written into the results as `verify`. */
  verify: Record<string, unknown>;
  /** A mismatch with no request errors to explain it. */
  failed: boolean;
}

/** Every balance = credit − charged events × charge, through the admin API. */
export async function verifyBalances(o: {
  admin: AdminApi;
  cfg: BenchConfig;
  accountIds: string[];
  perAccount: Int32Array;
  charges: Set<string>;
  /** Errors over all scenarios: a request its client gave up on may still have committed. */
  totalErrors: number;
  log: (m: string) => void;
}): Promise<BalancesCheck> {
  const { accountIds, perAccount, charges, totalErrors, log } = o;
  const verify: Record<string, unknown> = { charges: [...charges] };
  if (charges.size !== 1) {
    log(
      `balances not verified: ${charges.size} distinct charges seen (${[...charges].join(', ')})`,
    );
    return { verify, failed: false };
  }
  const charge = new Decimal([...charges][0]);
  const mismatches: string[] = [];
  await mapLimit(accountIds, o.cfg.setupConcurrency, async (id, i) => {
    const acc = await o.admin<{ balance: string }>('GET', `/v1/admin/accounts/${id}`);
    const expected = new Decimal(o.cfg.initialCredit).minus(charge.times(perAccount[i]));
    if (!new Decimal(acc.balance).eq(expected)) {
      mismatches.push(
        `account #${i}: balance ${acc.balance}, expected ${expected.toFixed()} (${perAccount[i]} events)`,
      );
    }
  });
  verify.accountsChecked = accountIds.length;
  verify.mismatches = mismatches.length;
  verify.samples = mismatches.slice(0, 5);
  verify.hotAccountEvents = perAccount[0];
  log(
    `balances: ${accountIds.length - mismatches.length}/${accountIds.length} exact (credit − confirmed events × ${charge.toFixed()}); ` +
      `hot account took ${fmtInt(perAccount[0])} events` +
      (mismatches.length
        ? `; e.g. ${mismatches[0]}${totalErrors ? ' (errors occurred, so a mismatch may be a request that committed after its client gave up)' : ''}`
        : ''),
  );
  return { verify, failed: mismatches.length > 0 && totalErrors === 0 };
}
