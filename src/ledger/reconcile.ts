import { DataSource } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface ReconcileProblem {
  accountId: string;
  check:
    | 'balance_vs_ledger_sum'
    | 'balance_vs_last_entry'
    | 'charged_usage_without_one_ledger_entry'
    | 'usage_entry_without_event';
  detail: string;
}

/**
 * Checks the ledger's invariants over every account: balance = sum of its entries = the last
 * entry's balance_after, and each charged usage event has exactly one ledger entry of the
 * same amount (and no usage entry lacks its event). Read-only; one consistent snapshot.
 */
export async function reconcile(
  ds: DataSource,
): Promise<{ accounts: number; problems: ReconcileProblem[] }> {
  return ds.transaction('REPEATABLE READ', async (em) => {
    const problems: ReconcileProblem[] = [];
    const balances = await sqlRows<{
      id: string;
      balance: string;
      ledger_sum: string;
      last_after: string | null;
    }>(
      em,
      `SELECT a.id, a.balance::text,
              COALESCE(s.total, 0)::text AS ledger_sum,
              (SELECT l.balance_after::text FROM ledger_entries l WHERE l.account_id = a.id ORDER BY l.id DESC LIMIT 1)
                AS last_after
       FROM accounts a
       LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries GROUP BY account_id) s ON s.account_id = a.id
       WHERE a.balance <> COALESCE(s.total, 0)
          OR a.balance <> COALESCE((SELECT l.balance_after FROM ledger_entries l WHERE l.account_id = a.id
                                    ORDER BY l.id DESC LIMIT 1), 0)`,
    );
    for (const b of balances) {
      if (b.balance !== b.ledger_sum) {
        problems.push({
          accountId: b.id,
          check: 'balance_vs_ledger_sum',
          detail: `balance ${b.balance} ≠ ledger sum ${b.ledger_sum}`,
        });
      }
      if (b.balance !== (b.last_after ?? '0.0000000000')) {
        problems.push({
          accountId: b.id,
          check: 'balance_vs_last_entry',
          detail: `balance ${b.balance} ≠ last balance_after ${b.last_after ?? 'none'}`,
        });
      }
    }
    const usage = await sqlRows<{
      account_id: string;
      request_id: string;
      entries: string;
      ledger_total: string | null;
      charge: string;
    }>(
      em,
      `SELECT u.account_id, u.request_id, COUNT(l.id)::text AS entries, SUM(l.amount)::text AS ledger_total, u.charge::text
       FROM usage_events u
       LEFT JOIN ledger_entries l ON l.type = 'usage' AND l.reference = u.request_id
       WHERE u.outcome = 'charged'
       GROUP BY u.id
       HAVING COUNT(l.id) <> 1 OR SUM(l.amount) <> -u.charge
       LIMIT 1000`,
    );
    for (const u of usage) {
      problems.push({
        accountId: u.account_id,
        check: 'charged_usage_without_one_ledger_entry',
        detail: `request ${u.request_id}: ${u.entries} ledger entries totalling ${u.ledger_total ?? '0'} for charge ${u.charge}`,
      });
    }
    const orphans = await sqlRows<{ account_id: string; reference: string }>(
      em,
      `SELECT l.account_id, l.reference FROM ledger_entries l
       WHERE l.type = 'usage'
         AND NOT EXISTS (SELECT 1 FROM usage_events u WHERE u.request_id = l.reference AND u.outcome = 'charged')
       LIMIT 1000`,
    );
    for (const o of orphans) {
      problems.push({
        accountId: o.account_id,
        check: 'usage_entry_without_event',
        detail: `ledger usage entry for ${o.reference}`,
      });
    }
    const [{ n }] = await sqlRows<{ n: string }>(em, `SELECT COUNT(*)::text AS n FROM accounts`);
    return { accounts: Number.parseInt(n, 10), problems };
  });
}
