import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Table ownership: a write-side module's SQL touches only its own tables, with the deliberate
 * exceptions listed below (each says why). The read side (`statements`) reads everything and
 * writes nothing. A new cross-domain query fails this test until it is listed and explained.
 */
const SRC = dirname(fileURLToPath(import.meta.url));
const MIGRATIONS = join(SRC, '..', 'migrations');

const OWNERS: Record<string, string[]> = {
  accounts: ['accounts', 'adjustments'],
  audit: ['audit_log'],
  catalog: ['models', 'price_versions'],
  console: ['console_logins', 'console_sessions', 'console_invites', 'console_throttle'],
  database: ['seed_runs'],
  groups: ['groups'],
  holds: ['holds'],
  ledger: ['ledger_entries'],
  metrics: [],
  payments: ['promotions', 'top_ups', 'stripe_events', 'stripe_refunds', 'stripe_disputes'],
  redemptions: ['redemption_batches', 'redemption_codes', 'redemption_attempts'],
  tokens: ['api_tokens'],
  usage: ['usage_events', 'usage_requests', 'usage_daily'],
};

/** The read side: cross-domain reads live here and nowhere else; it writes nothing. */
const READ_SIDE = ['statements'];

/** `module/file`: tables it may touch besides its own, and why. */
const EXCEPTIONS: Record<string, { tables: string[]; why: string }> = {
  'ledger/ledger.repository.ts': {
    tables: ['accounts'],
    why: 'the ledger is the only code that moves accounts.balance, in the statement that appends the entry',
  },
  'accounts/accounts.repository.ts': {
    tables: ['holds'],
    why: 'an account read subtracts expired, unswept holds from held, so they stop counting at expiry',
  },
  'tokens/tokens.repository.ts': {
    // authorize runs in the SQL function authorize_facts (migration 1764830000000): it reads
    // the token with its account, group, price in force, the request's hold and whether the
    // request was booked, and places the hold through holds' own function, holds_place.
    tables: ['holds'],
    why: 'a token read subtracts expired, unswept holds from held, so they stop counting at expiry',
  },
  'groups/groups.repository.ts': {
    tables: ['api_tokens'],
    why: 'a group in use by tokens cannot be deleted; checked under the group row lock',
  },
  'holds/holds.repository.ts': {
    tables: ['accounts', 'api_tokens'],
    // Placing a hold runs in the SQL function holds_place (migration 1764810000000), which
    // also reads usage_requests: a request already booked is never held again.
    why: 'held on the account and token changes in the statement that places or closes the hold, under the account lock',
  },
  'usage/usage.repository.ts': {
    // Holds are settled in the same statement through holds' own SQL function,
    // holds_settle_usage (migration 1764880000000).
    tables: ['accounts', 'api_tokens', 'groups'],
    why: 'the ingestion statement locks accounts with their tokens and groups and adds token spend in one transaction',
  },
  'usage/usage-reviews.repository.ts': {
    tables: ['accounts', 'api_tokens'],
    why: 'an approval locks the account and adds the token spend with the booking, as ingestion does',
  },
};

const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory()
      ? walk(p)
      : p.endsWith('.ts') && !p.endsWith('.spec.ts')
        ? [p]
        : [];
  });

/** Every table the migrations create. */
function knownTables(): Set<string> {
  const out = new Set<string>();
  for (const f of readdirSync(MIGRATIONS)) {
    for (const m of readFileSync(join(MIGRATIONS, f), 'utf8').matchAll(
      /CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/g,
    ))
      out.add(m[1]);
  }
  out.delete('migrations');
  return out;
}

/** Tables a source text reads or writes: after FROM, JOIN, INTO, UPDATE, or DELETE FROM. */
export function tablesIn(
  source: string,
  known: Set<string>,
): { reads: Set<string>; writes: Set<string> } {
  const reads = new Set<string>();
  const writes = new Set<string>();
  for (const m of source.matchAll(/\b(FROM|JOIN|INTO|UPDATE)\s+([a-z_]+)/g)) {
    const table = m[2];
    if (!known.has(table)) continue;
    if (m[1] === 'INTO' || m[1] === 'UPDATE') writes.add(table);
    else reads.add(table);
  }
  for (const m of source.matchAll(/\bDELETE FROM\s+([a-z_]+)/g))
    if (known.has(m[1])) writes.add(m[1]);
  return { reads, writes };
}

/** What `file` (relative to src) touches that its module neither owns nor lists as an exception. */
export function violations(file: string, source: string, known: Set<string>): string[] {
  const module = file.split('/')[0];
  const { reads, writes } = tablesIn(source, known);
  if (READ_SIDE.includes(module))
    return [...writes].map((t) => `${file} writes ${t} from the read side`);
  const allowed = new Set([...(OWNERS[module] ?? []), ...(EXCEPTIONS[file]?.tables ?? [])]);
  return [...new Set([...reads, ...writes])]
    .filter((t) => !allowed.has(t))
    .map(
      (t) =>
        `${file} touches ${t}, owned by ${Object.keys(OWNERS).find((k) => OWNERS[k].includes(t)) ?? 'nobody'}`,
    );
}

describe('table ownership', () => {
  const known = knownTables();

  it('knows an owner for every table the migrations create', () => {
    const owned = new Set(Object.values(OWNERS).flat());
    expect([...known].filter((t) => !owned.has(t))).toEqual([]);
  });

  it('lets no module reach a table it does not own, beyond the listed exceptions', () => {
    const found = walk(SRC).flatMap((p) => {
      const file = relative(SRC, p).split('\\').join('/');
      return violations(file, readFileSync(p, 'utf8'), known);
    });
    expect(found).toEqual([]);
  });

  it('lists no exception that is not needed any more', () => {
    const stale = Object.entries(EXCEPTIONS).flatMap(([file, e]) => {
      const { reads, writes } = tablesIn(readFileSync(join(SRC, file), 'utf8'), known);
      return e.tables.filter((t) => !reads.has(t) && !writes.has(t)).map((t) => `${file}: ${t}`);
    });
    expect(stale).toEqual([]);
  });

  it('fails for a module that reaches another module’s table, and for a read side that writes', () => {
    expect(violations('groups/x.repository.ts', '`SELECT 1 FROM ledger_entries`', known)).toEqual([
      'groups/x.repository.ts touches ledger_entries, owned by ledger',
    ]);
    expect(
      violations('statements/x.repository.ts', '`UPDATE accounts SET balance = 0`', known),
    ).toEqual(['statements/x.repository.ts writes accounts from the read side']);
    expect(
      violations('statements/x.repository.ts', '`SELECT * FROM accounts JOIN holds h`', known),
    ).toEqual([]);
  });
});
