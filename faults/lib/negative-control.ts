import pg from 'pg';
import { verifyBooks } from './books.js';
import type { Fixture } from './fixture.js';
import type { HoldPlan } from './hold-gateway.js';
import type { PlannedEvent } from './plan.js';
import { runReconcile } from './reconcile.js';

/**
 * Proves the final checks are not vacuous: one account's balance nudged behind the ledger's
 * back, then another's held behind its holds' back (see nudgeControl).
 */
export async function negativeControl(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan?: HoldPlan,
): Promise<string[]> {
  const last = fx.accounts[fx.accounts.length - 1].id;
  return [
    ...(await nudgeControl(log, url, fx, events, plan, 'balance', last)),
    ...(await nudgeControl(log, url, fx, events, plan, 'held', fx.accounts[0].id)),
  ];
}

/**
 * Nudges `column` of account `victim` by 1e-10, requires both the books check and
 * `reconcile-cli` (exit 1, naming the account) to catch it, then puts the value back.
 */
async function nudgeControl(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan: HoldPlan | undefined,
  column: 'balance' | 'held',
  victim: string,
): Promise<string[]> {
  const problems: string[] = [];
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`UPDATE accounts SET ${column} = ${column} + 0.0000000001 WHERE id = $1`, [
      victim,
    ]);
    const books = await verifyBooks(url, fx, events, plan);
    if (!books.failures.some((f) => f.includes(victim) && f.includes(column)))
      problems.push(
        `negative control: the books check missed a ${column} off by 1e-10 on ${victim}`,
      );
    const rec = await runReconcile(url);
    if (rec.code !== 1 || !rec.output.includes(victim))
      problems.push(
        `negative control: reconcile exited ${rec.code} without naming ${victim}: ${rec.output.slice(0, 300)}`,
      );
    log(
      `negative control: ${column} of ${victim} nudged by 1e-10 → books check ${books.failures.length} failure(s), ` +
        `reconcile exit ${rec.code} (${rec.output.split('\n')[0]}); ${problems.length ? 'NOT CAUGHT' : 'caught'}; restored`,
    );
  } finally {
    await c.query(`UPDATE accounts SET ${column} = ${column} - 0.0000000001 WHERE id = $1`, [
      victim,
    ]);
    await c.end();
  }
  return problems;
}
