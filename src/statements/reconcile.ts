import { DataSource } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface ReconcileProblem {
  accountId: string;
  check:
    | 'balance_vs_ledger_sum'
    | 'balance_vs_last_entry'
    | 'charged_usage_without_one_ledger_entry'
    | 'usage_entry_without_event'
    | 'event_vs_register'
    | 'held_vs_active_holds'
    | 'token_held_vs_active_holds'
    | 'charged_request_still_held';
  detail: string;
}

/**
 * Checks the ledger's invariants over every account: balance = sum of its entries = the last
 * entry's balance_after, and each charged request (in the register, usage_requests, which
 * retention never drops) has exactly one ledger entry of the same amount (and no usage entry
 * lacks its charged request); every kept event agrees with its register row; each account's and token's `held` = the
 * sum of its active holds, and no charged request still holds money. Read-only; one
 * consistent snapshot.
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
              (SELECT l.balance_after::text FROM ledger_entries l WHERE l.account_id = a.id
                ORDER BY l.created_at DESC, l.id DESC LIMIT 1)
                AS last_after
       FROM accounts a
       LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries GROUP BY account_id) s ON s.account_id = a.id
       WHERE a.balance <> COALESCE(s.total, 0)
          OR a.balance <> COALESCE((SELECT l.balance_after FROM ledger_entries l WHERE l.account_id = a.id
                                    ORDER BY l.created_at DESC, l.id DESC LIMIT 1), 0)`,
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
    // One ledger entry per charged request, checked against the register (usage_requests),
    // which outlives the months retention drops: exact whether or not the events are still kept.
    const usage = await sqlRows<{
      account_id: string;
      request_id: string;
      entries: string;
      ledger_total: string | null;
      charge: string;
    }>(
      em,
      `SELECT r.account_id,
              COALESCE(max(l.reference),
                       (SELECT e.request_id FROM usage_events e WHERE e.account_id = r.account_id
                          AND e.recorded_at = r.recorded_at AND usage_request_key(e.request_id) = r.key),
                       'with register key ' || r.key::text) AS request_id,
              COUNT(l.id)::text AS entries, SUM(l.amount)::text AS ledger_total, r.charge::text
       FROM usage_requests r
       LEFT JOIN ledger_entries l ON l.type = 'usage' AND usage_request_key(l.reference) = r.key
       WHERE r.outcome = 'charged'
       GROUP BY r.key
       HAVING COUNT(l.id) <> 1 OR SUM(l.amount) <> -r.charge
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
         AND NOT EXISTS (SELECT 1 FROM usage_requests r WHERE r.key = usage_request_key(l.reference) AND r.outcome = 'charged')
       LIMIT 1000`,
    );
    for (const o of orphans) {
      problems.push({
        accountId: o.account_id,
        check: 'usage_entry_without_event',
        detail: `ledger usage entry for ${o.reference}`,
      });
    }
    // Every kept event agrees with its register row (account, month, outcome, charge).
    const unregistered = await sqlRows<{ account_id: string; request_id: string }>(
      em,
      `SELECT e.account_id, e.request_id FROM usage_events e
       LEFT JOIN usage_requests r ON r.key = usage_request_key(e.request_id)
       WHERE r.key IS NULL OR r.account_id <> e.account_id OR r.recorded_at <> e.recorded_at
          OR usage_outcome_name(r.outcome) <> e.outcome OR r.charge <> e.charge
       LIMIT 1000`,
    );
    for (const u of unregistered) {
      problems.push({
        accountId: u.account_id,
        check: 'event_vs_register',
        detail: `request ${u.request_id} disagrees with (or is missing from) usage_requests`,
      });
    }
    const held = await sqlRows<{ account_id: string; held: string; holds: string }>(
      em,
      `SELECT a.id AS account_id, a.held::text AS held, COALESCE(h.total, 0)::text AS holds
       FROM accounts a
       LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM holds WHERE status = 'active' GROUP BY account_id) h
         ON h.account_id = a.id
       WHERE a.held <> COALESCE(h.total, 0)
       LIMIT 1000`,
    );
    for (const h of held) {
      problems.push({
        accountId: h.account_id,
        check: 'held_vs_active_holds',
        detail: `held ${h.held} ≠ active holds ${h.holds}`,
      });
    }
    const tokenHeld = await sqlRows<{
      account_id: string;
      id: string;
      held: string;
      holds: string;
    }>(
      em,
      `SELECT t.account_id, t.id, t.held::text AS held, COALESCE(h.total, 0)::text AS holds
       FROM api_tokens t
       LEFT JOIN (SELECT token_id, SUM(amount) AS total FROM holds WHERE status = 'active' GROUP BY token_id) h
         ON h.token_id = t.id
       WHERE t.held <> COALESCE(h.total, 0)
       LIMIT 1000`,
    );
    for (const h of tokenHeld) {
      problems.push({
        accountId: h.account_id,
        check: 'token_held_vs_active_holds',
        detail: `token ${h.id}: held ${h.held} ≠ active holds ${h.holds}`,
      });
    }
    const stillHeld = await sqlRows<{ account_id: string; request_id: string; amount: string }>(
      em,
      `SELECT h.account_id, h.request_id, h.amount::text AS amount FROM holds h
       JOIN usage_requests r ON r.key = usage_request_key(h.request_id) AND r.outcome = 'charged'
       WHERE h.status = 'active'
       LIMIT 1000`,
    );
    for (const h of stillHeld) {
      problems.push({
        accountId: h.account_id,
        check: 'charged_request_still_held',
        detail: `request ${h.request_id} is charged and still holds ${h.amount}`,
      });
    }
    const [{ n }] = await sqlRows<{ n: string }>(em, `SELECT COUNT(*)::text AS n FROM accounts`);
    return { accounts: Number.parseInt(n, 10), problems };
  });
}
