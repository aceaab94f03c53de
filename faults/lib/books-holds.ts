import { Dec, ZERO } from './env.js';
import type { Fixture } from './fixture.js';
import type { HoldPlan } from './hold-gateway.js';

// ---- the holds, by direct SQL --------------------------------------------------------------------

type Query = <T extends object>(sql: string) => Promise<T[]>;
type Fail = (m: string) => void;

/** accounts.held and api_tokens.held each = Σ amount of the holds with status 'active'. */
async function checkHeldSums(q: Query, fail: Fail): Promise<string> {
  const sums = await q<{ kind: string; id: string; held: string; active: string }>(
    `SELECT 'account' AS kind, a.id::text, a.held::text,
            (SELECT COALESCE(SUM(amount), 0)::text FROM holds h WHERE h.account_id = a.id AND h.status = 'active') AS active
       FROM accounts a
     UNION ALL
     SELECT 'token', t.id::text, t.held::text,
            (SELECT COALESCE(SUM(amount), 0)::text FROM holds h WHERE h.token_id = t.id AND h.status = 'active')
       FROM api_tokens t`,
  );
  let heldNow = ZERO;
  for (const s of sums) {
    if (!new Dec(s.held).eq(new Dec(s.active)))
      fail(`${s.kind} ${s.id}: held ${s.held} ≠ Σ active holds ${s.active}`);
    if (s.kind === 'account') heldNow = heldNow.plus(s.held);
  }
  const accounts = sums.filter((s) => s.kind === 'account').length;
  return `held: ${accounts} accounts and ${sums.length - accounts} tokens = Σ their active holds (${heldNow.toFixed()} USD held now)`;
}

/** No charged request still holds money; no released (abandoned) request has a usage event. */
async function checkClosedHolds(q: Query, fail: Fail): Promise<string> {
  const bad = await q<{ request_id: string; status: string; outcome: string }>(
    `SELECT h.request_id, h.status, u.outcome FROM holds h JOIN usage_events u ON u.request_id = h.request_id
      WHERE (h.status = 'active' AND u.outcome = 'charged' AND u.token_id = h.token_id)
         OR h.status = 'released'`,
  );
  for (const b of bad)
    fail(
      b.status === 'active'
        ? `${b.request_id}: charged, yet its hold is still active`
        : `${b.request_id}: released as abandoned, yet it has a usage event (${b.outcome})`,
    );
  const stillHeld = bad.filter((b) => b.status === 'active').length;
  return `closed holds: ${stillHeld} charged requests still holding money, ${bad.length - stillHeld} released requests with a usage event (both must be 0)`;
}

/** Counts of holds rows by status, e.g. "settled 580, released 12". */
async function countHolds(q: Query): Promise<string> {
  const rows = await q<{ status: string; n: string }>(
    `SELECT status, COUNT(*)::text AS n FROM holds GROUP BY status ORDER BY status`,
  );
  const total = rows.reduce((n, r) => n + Number(r.n), 0);
  return `holds: ${total} rows (${rows.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'})`;
}

/**
 * Each holds row against the plan: a request the gateway authorized, on its token and
 * account, with the planned amount, settled by its usage event or released when abandoned.
 * A hold for every allowed answer; none where every answer refused and none was lost.
 */
async function checkPlannedHolds(
  q: Query,
  fail: Fail,
  fx: Fixture,
  plan: HoldPlan,
): Promise<string> {
  const rows = await q<{
    request_id: string;
    account_id: string;
    token_id: string;
    amount: string;
    status: string;
  }>(`SELECT request_id, account_id::text, token_id::text, amount::text, status FROM holds`);
  const planned = new Map(plan.holds.map((h) => [h.requestId, h]));
  const stored = new Set<string>();
  for (const r of rows) {
    const h = planned.get(r.request_id);
    if (!h) {
      fail(`holds has ${r.request_id}, which was never planned`);
      continue;
    }
    stored.add(r.request_id);
    if (r.account_id !== fx.accounts[h.account].id || r.token_id !== fx.tokens[h.token].id)
      fail(`hold ${r.request_id}: on account ${r.account_id} / token ${r.token_id}`);
    if (!new Dec(r.amount).eq(h.amount))
      fail(`hold ${r.request_id} (${h.what}): amount ${r.amount}, expected ${h.amount.toFixed()}`);
    const want = h.abandoned ? 'released' : 'settled';
    if (r.status !== want) fail(`hold ${r.request_id}: ${r.status}, expected ${want}`);
  }
  let missing = 0;
  for (const h of plan.holds) {
    if (plan.allowed.has(h.requestId) && !stored.has(h.requestId)) {
      missing++;
      fail(`authorize allowed ${h.requestId}, but there is no holds row`);
    } else if (
      !plan.allowed.has(h.requestId) &&
      !plan.uncertain.has(h.requestId) &&
      stored.has(h.requestId)
    )
      fail(`hold ${h.requestId} exists, though no authorize was allowed`);
  }
  const abandoned = plan.holds.filter((h) => h.abandoned).length;
  return `planned holds: ${plan.allowed.size} allowed of ${plan.holds.length} planned (${abandoned} abandoned), ${stored.size} stored, ${missing} missing`;
}

/** Every hold check; the plan-based one only when a plan is given. */
export async function verifyHolds(
  q: Query,
  fail: Fail,
  fx: Fixture,
  plan: HoldPlan | undefined,
): Promise<string[]> {
  const lines = [
    await countHolds(q),
    await checkHeldSums(q, fail),
    await checkClosedHolds(q, fail),
  ];
  if (plan) lines.push(await checkPlannedHolds(q, fail, fx, plan));
  return lines;
}
