import { withClient } from './db.js';
import { EVENT_CHARGE } from './pgbench.js';

/**
 * Extends the pgbench database (preparePgbenchDatabase) with what spend control adds to the
 * service's schema: `held` and `credit_limit` on accounts, a token row per account with its
 * `spent` and `held`, and a holds table shaped like the service's (same columns, checks,
 * foreign keys and partial indexes, so an insert maintains as much as the service's does).
 * Run it after the other pgbench scripts, so theirs run on the table as it was.
 */
export async function prepareHoldsTables(url: string, accounts: number): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`
      ALTER TABLE accounts
        ADD COLUMN held numeric(38,10) NOT NULL DEFAULT 0 CHECK (held >= 0),
        ADD COLUMN credit_limit numeric(38,10) NOT NULL DEFAULT 0 CHECK (credit_limit >= 0);
      CREATE TABLE tokens (
        id int PRIMARY KEY,
        account_id int NOT NULL REFERENCES accounts (id),
        spent numeric(38,10) NOT NULL DEFAULT 0,
        held numeric(38,10) NOT NULL DEFAULT 0 CHECK (held >= 0)
      );
      CREATE TABLE holds (
        request_id varchar(200) PRIMARY KEY,
        account_id int NOT NULL REFERENCES accounts (id),
        token_id int NOT NULL REFERENCES tokens (id),
        model varchar(128) NOT NULL,
        amount numeric(38,10) NOT NULL CHECK (amount >= 0),
        status varchar(16) NOT NULL DEFAULT 'active'
          CHECK (status IN ('active', 'settled', 'released', 'expired')),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        closed_at timestamptz,
        CONSTRAINT holds_closed CHECK ((status = 'active') = (closed_at IS NULL))
      );
      CREATE INDEX holds_active_account ON holds (account_id, created_at DESC, request_id DESC)
        WHERE status = 'active';
      CREATE INDEX holds_active_expiry ON holds (expires_at) WHERE status = 'active';
      CREATE INDEX holds_active_account_expiry ON holds (account_id, expires_at) WHERE status = 'active';`);
    await c.query(
      `INSERT INTO tokens (id, account_id) SELECT g, g FROM generate_series(1, $1::int) g`,
      [accounts],
    );
    await c.query('VACUUM ANALYZE accounts');
    await c.query('VACUUM ANALYZE tokens');
  });
}

/** A money literal for a script (the service's answer, checked before it goes into SQL). */
const literal = (amount: string): string => {
  if (!/^\d{1,28}(\.\d{1,10})?$/.test(amount)) throw new Error(`not an amount: ${amount}`);
  return amount;
};

/** One authorize's writes: the account's held with the balance check, the hold, the token's held. */
const authorizeTxn = (prefix: string, amount: string): string => `BEGIN;
UPDATE accounts SET held = held + ${amount} WHERE id = :aid AND balance - held - ${amount} >= -credit_limit;
INSERT INTO holds (request_id, account_id, token_id, model, amount, created_at, expires_at) VALUES ('${prefix}-' || :client_id || '-' || :tag, :aid, :aid, 'gpt-image-2', ${amount}, now(), now() + interval '900 seconds');
UPDATE tokens SET held = held + ${amount} WHERE id = :aid;
END;
`;

/** An authorize with hold per run, over accounts 1..accounts (each with its one token). */
export const authorizeScript = (accounts: number, holdAmount: string): string =>
  `\\set aid random(1, ${accounts})
\\set tag random(1, 9000000000000000000)
${authorizeTxn('pga', literal(holdAmount))}`;

/**
 * The gateway's pattern per run: the authorize transaction above, then the usage event's
 * transaction (the "spread" script's three statements) settling that hold: the hold marked
 * settled, the account's balance and held, the token's spent and held, the ledger row.
 */
export const authorizeThenEventScript = (accounts: number, holdAmount: string): string => {
  const amt = literal(holdAmount);
  const rid = `'pgs-' || :client_id || '-' || :tag`;
  return `\\set aid random(1, ${accounts})
\\set tag random(1, 9000000000000000000)
${authorizeTxn('pgs', amt)}BEGIN;
INSERT INTO events (request_id, account_id, charge) VALUES (${rid}, :aid, ${EVENT_CHARGE});
UPDATE holds SET status = 'settled', closed_at = now() WHERE request_id = ${rid} AND status = 'active';
UPDATE accounts SET balance = balance - ${EVENT_CHARGE}, held = held - ${amt} WHERE id = :aid RETURNING balance AS bal \\gset
UPDATE tokens SET spent = spent + ${EVENT_CHARGE}, held = held - ${amt} WHERE id = :aid;
INSERT INTO ledger (account_id, amount, balance_after, reference) VALUES (:aid, -${EVENT_CHARGE}, :bal, ${rid});
END;
`;
};
