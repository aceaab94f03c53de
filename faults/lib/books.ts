import pg from 'pg';
import { Dec, ZERO } from './env.js';
import type { Fixture } from './fixture.js';
import type { HoldPlan } from './hold-gateway.js';
import { verifyHolds } from './books-holds.js';
import type { PlannedEvent } from './plan.js';
import { runReconcile } from './reconcile.js';

// ---- the books, by direct SQL --------------------------------------------------------------------

export interface BooksReport {
  failures: string[];
  lines: string[];
}

/**
 * Everything the service wrote, against what the events should have done:
 * one usage_events row per request id sent (and none other) with the planned outcome and
 * charge; one usage ledger entry of −charge per charged event and none for skipped ones;
 * per account, balance = opening credit − Σ charges = Σ ledger amounts, the opening credit
 * booked once, the daily roll-ups agreeing; per token, spent = Σ its charges. Then the holds
 * (verifyHolds): held sums, closed holds, and each row against `plan` when given.
 */
export async function verifyBooks(
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan?: HoldPlan,
): Promise<BooksReport> {
  const failures: string[] = [];
  const fail = (m: string): void => {
    if (failures.length < 40) failures.push(m);
    else if (failures.length === 40) failures.push('… more not shown');
  };
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    const q = async <T extends object>(sql: string): Promise<T[]> =>
      (await pool.query<T>(sql)).rows;
    const accountIdx = new Map(fx.accounts.map((a, i) => [a.id, i]));
    const tokenIdx = new Map(fx.tokens.map((t, i) => [t.id, i]));

    // usage_events
    const planned = new Map<string, PlannedEvent>();
    for (const e of events) {
      if (planned.has(e.requestId)) throw new Error(`planned twice: ${e.requestId}`);
      planned.set(e.requestId, e);
    }
    const rows = await q<{
      request_id: string;
      account_id: string;
      token_id: string;
      outcome: string;
      reason: string | null;
      charge: string;
    }>(
      `SELECT request_id, account_id::text, token_id::text, outcome, reason, charge::text FROM usage_events`,
    );
    const seen = new Set<string>();
    for (const r of rows) {
      const e = planned.get(r.request_id);
      if (!e) {
        fail(`usage_events has ${r.request_id}, which was never sent`);
        continue;
      }
      if (seen.has(r.request_id)) fail(`usage_events holds ${r.request_id} more than once`);
      seen.add(r.request_id);
      if (accountIdx.get(r.account_id) !== e.account || tokenIdx.get(r.token_id) !== e.token)
        fail(`${r.request_id}: stored on account ${r.account_id} / token ${r.token_id}`);
      if (r.outcome !== e.outcome || (r.reason ?? null) !== e.reason)
        fail(`${r.request_id}: stored ${r.outcome}/${r.reason}, expected ${e.outcome}/${e.reason}`);
      if (!new Dec(r.charge).eq(e.charge))
        fail(`${r.request_id}: stored charge ${r.charge}, expected ${e.charge.toFixed()}`);
    }
    let lost = 0;
    for (const id of planned.keys()) {
      if (!seen.has(id)) {
        lost++;
        fail(`event ${id} was sent but is not in usage_events (lost)`);
      }
    }

    // usage ledger entries: exactly one per charged event, of −charge
    const entries = await q<{ reference: string; n: string; total: string; account_id: string }>(
      `SELECT reference, COUNT(*)::text AS n, SUM(amount)::text AS total, MIN(account_id::text) AS account_id
         FROM ledger_entries WHERE type = 'usage' GROUP BY reference`,
    );
    const entryOf = new Map(entries.map((x) => [x.reference, x]));
    let chargedEvents = 0;
    for (const e of events) {
      const x = entryOf.get(e.requestId);
      if (e.outcome !== 'charged') {
        if (x) fail(`skipped event ${e.requestId} has ${x.n} usage ledger entries`);
        continue;
      }
      chargedEvents++;
      if (!x) fail(`charged event ${e.requestId} has no ledger entry`);
      else if (x.n !== '1')
        fail(`charged event ${e.requestId} has ${x.n} ledger entries (double charge)`);
      else if (!new Dec(x.total).eq(e.charge.neg()) || accountIdx.get(x.account_id) !== e.account)
        fail(
          `${e.requestId}: ledger entry ${x.total} on ${x.account_id}, expected ${e.charge.neg().toFixed()}`,
        );
    }
    for (const x of entries)
      if (!planned.has(x.reference)) fail(`usage ledger entry for unknown request ${x.reference}`);

    // accounts: balance = credit − Σ charges = Σ ledger; opening credit booked once
    const expectCharge = fx.accounts.map(() => ZERO);
    const expectCount = fx.accounts.map(() => ({ requests: 0, charged: 0, skipped: 0 }));
    const expectSpent = fx.tokens.map(() => ZERO);
    for (const e of events) {
      expectCharge[e.account] = expectCharge[e.account].plus(e.charge);
      expectSpent[e.token] = expectSpent[e.token].plus(e.charge);
      const c = expectCount[e.account];
      c.requests++;
      if (e.outcome === 'charged') c.charged++;
      else c.skipped++;
    }
    const balances = await q<{
      id: string;
      balance: string;
      ledger: string | null;
      usage: string | null;
      other: string | null;
      other_n: string;
    }>(
      `SELECT a.id::text, a.balance::text,
              (SELECT SUM(amount)::text FROM ledger_entries l WHERE l.account_id = a.id) AS ledger,
              (SELECT SUM(amount)::text FROM ledger_entries l WHERE l.account_id = a.id AND l.type = 'usage') AS usage,
              (SELECT SUM(amount)::text FROM ledger_entries l WHERE l.account_id = a.id AND l.type <> 'usage') AS other,
              (SELECT COUNT(*)::text FROM ledger_entries l WHERE l.account_id = a.id AND l.type <> 'usage') AS other_n
         FROM accounts a`,
    );
    let negative = 0;
    let checkedAccounts = 0;
    for (const b of balances) {
      const i = accountIdx.get(b.id);
      if (i === undefined) continue;
      checkedAccounts++;
      const a = fx.accounts[i];
      const expected = a.credit.minus(expectCharge[i]);
      const balance = new Dec(b.balance);
      if (balance.isNeg()) negative++;
      if (!balance.eq(expected))
        fail(
          `account #${i} ${b.id}: balance ${b.balance}, expected ${a.credit.toFixed()} − ${expectCharge[i].toFixed()} = ${expected.toFixed()}`,
        );
      if (!balance.eq(new Dec(b.ledger ?? 0)))
        fail(`account #${i} ${b.id}: balance ${b.balance} ≠ Σ ledger ${b.ledger}`);
      if (!new Dec(b.usage ?? 0).eq(expectCharge[i].neg()))
        fail(
          `account #${i}: Σ usage entries ${b.usage}, expected ${expectCharge[i].neg().toFixed()}`,
        );
      if (b.other_n !== '1' || !new Dec(b.other ?? 0).eq(a.credit))
        fail(
          `account #${i}: ${b.other_n} non-usage entries totalling ${b.other}, expected the one credit ${a.credit.toFixed()}`,
        );
    }
    if (checkedAccounts !== fx.accounts.length)
      fail(`found ${checkedAccounts} of ${fx.accounts.length} accounts`);

    // daily roll-ups (what statements read) agree with the events
    const daily = await q<{
      account_id: string;
      requests: string;
      charged: string;
      skipped: string;
      charge: string;
    }>(
      `SELECT account_id::text, SUM(requests)::text AS requests, SUM(charged)::text AS charged,
              SUM(skipped)::text AS skipped, SUM(charge)::text AS charge
         FROM usage_daily GROUP BY account_id`,
    );
    const dailyOf = new Map(daily.map((d) => [d.account_id, d]));
    fx.accounts.forEach((a, i) => {
      const d = dailyOf.get(a.id);
      const c = expectCount[i];
      const got = d
        ? `${d.requests}/${d.charged}/${d.skipped}/${new Dec(d.charge).toFixed()}`
        : '0/0/0/0';
      const want = `${c.requests}/${c.charged}/${c.skipped}/${expectCharge[i].toFixed()}`;
      if (got !== want)
        fail(`account #${i}: usage_daily requests/charged/skipped/charge ${got}, expected ${want}`);
    });

    // token spend
    const spent = await q<{ id: string; spent: string }>(
      `SELECT id::text, spent::text FROM api_tokens`,
    );
    for (const s of spent) {
      const t = tokenIdx.get(s.id);
      if (t !== undefined && !new Dec(s.spent).eq(expectSpent[t]))
        fail(`token ${s.id}: spent ${s.spent}, expected ${expectSpent[t].toFixed()}`);
    }

    const holdLines = await verifyHolds(q, fail, fx, plan);

    const total = expectCharge.reduce((x, y) => x.plus(y), ZERO);
    return {
      failures,
      lines: [
        `usage_events: ${rows.length} rows for ${planned.size} request ids sent (${lost} lost, ${rows.length - seen.size} extra)`,
        `ledger: ${entries.length} usage entries for ${chargedEvents} charged events; ${events.length - chargedEvents} skipped`,
        `balances: ${checkedAccounts} accounts = opening credit − Σ charges = Σ ledger (total charged ${total.toFixed()} USD; ${negative} account(s) below zero)`,
        `roll-ups and token spend checked for every account and token`,
        ...holdLines,
      ],
    };
  } finally {
    await pool.end();
  }
}

/** Books check, then the reconcile CLI; logs both and returns the failures. */
export async function checkBooks(
  log: (m: string) => void,
  url: string,
  fx: Fixture,
  events: PlannedEvent[],
  plan?: HoldPlan,
): Promise<string[]> {
  const books = await verifyBooks(url, fx, events, plan);
  for (const l of books.lines) log(`  ${l}`);
  for (const f of books.failures) log(`  BOOKS: ${f}`);
  const rec = await runReconcile(url);
  log(
    `  npm run reconcile → exit ${rec.code}: ${rec.output.split('\n').slice(-12).join('\n    ')}`,
  );
  const failures = books.failures.map((f) => `books: ${f}`);
  if (rec.code !== 0) failures.push(`reconcile exited ${rec.code}`);
  return failures;
}
