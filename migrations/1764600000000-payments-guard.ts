import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Payments that cannot be gamed: disputes and failed refunds tracked per Stripe object, an
 * admin review queue for top-ups, idempotent top-up creation, and prepaid redemption codes.
 * Two new ledger entry types: `dispute` (signed: a debit, or its reversal) and `redemption`.
 */
export class PaymentsGuard1764600000000 implements MigrationInterface {
  name = 'PaymentsGuard1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_type_check`);
    await q.query(`
      ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_type_check
        CHECK (type IN ('usage', 'top_up', 'refund', 'dispute', 'redemption', 'adjustment'))`);
    // Statements sum every non-usage type through this index.
    await q.query(`DROP INDEX ledger_entries_account_type_created`);
    await q.query(
      `CREATE INDEX ledger_entries_account_type_created ON ledger_entries (account_id, type, created_at)
       WHERE type IN ('top_up', 'refund', 'dispute', 'redemption', 'adjustment')`,
    );

    // disputed_credit: credit that open disputes hold back. failed_refund_cash: cash of refunds
    // Stripe reported failed or canceled (refunded_cash stays Stripe's running total). The
    // refunds and disputes together never take back more than the credit: the CHECK says so.
    // resolution: an admin's final decision on a needs_review top-up.
    await q.query(`
      ALTER TABLE top_ups
        ADD COLUMN disputed_credit numeric(38,10) NOT NULL DEFAULT 0
          CONSTRAINT top_ups_disputed_credit_nonnegative CHECK (disputed_credit >= 0),
        ADD COLUMN failed_refund_cash numeric(38,2) NOT NULL DEFAULT 0
          CONSTRAINT top_ups_failed_refund_cash_nonnegative CHECK (failed_refund_cash >= 0),
        ADD COLUMN charge_id text,
        ADD COLUMN idempotency_key varchar(255),
        ADD COLUMN request_hash char(64),
        ADD COLUMN resolution varchar(16) CONSTRAINT top_ups_resolution_check CHECK (resolution IN ('credit', 'dismiss')),
        ADD COLUMN resolution_note text,
        ADD COLUMN resolved_at timestamptz,
        ADD CONSTRAINT top_ups_taken_back CHECK (refunded_credit + disputed_credit <= credit),
        ADD CONSTRAINT top_ups_resolved CHECK ((resolution IS NULL) = (resolved_at IS NULL)),
        ADD CONSTRAINT top_ups_account_idempotency_key UNIQUE (account_id, idempotency_key)`);
    // The admin queue (any status, all accounts), the pending-top-up limit, disputes by charge.
    await q.query(
      `CREATE INDEX top_ups_status_created ON top_ups (status, created_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX top_ups_pending ON top_ups (account_id, created_at) WHERE status = 'pending'`,
    );
    await q.query(`CREATE INDEX top_ups_charge ON top_ups (charge_id) WHERE charge_id IS NOT NULL`);

    // One row per Stripe refund reported by charge.refund.updated: a refund's failure gives its
    // credit back once, whatever order or how often its events arrive. top_up_id is null until
    // the refunded payment is known (then attached by payment_intent_id).
    await q.query(`
      CREATE TABLE stripe_refunds (
        id text PRIMARY KEY,
        top_up_id uuid REFERENCES top_ups (id),
        payment_intent_id text,
        charge_id text,
        amount numeric(38,2) NOT NULL CHECK (amount >= 0),
        status text NOT NULL,
        failed boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX stripe_refunds_top_up ON stripe_refunds (top_up_id)`);
    await q.query(
      `CREATE INDEX stripe_refunds_unattached ON stripe_refunds (payment_intent_id) WHERE top_up_id IS NULL`,
    );

    // One row per Stripe dispute: debited once (debited_credit is what it took), reinstated
    // once; a dispute won before its debit was applied is never debited.
    await q.query(`
      CREATE TABLE stripe_disputes (
        id text PRIMARY KEY,
        top_up_id uuid REFERENCES top_ups (id),
        payment_intent_id text,
        charge_id text,
        amount numeric(38,2) CHECK (amount >= 0),
        status text,
        debited boolean NOT NULL DEFAULT false,
        debited_credit numeric(38,10) NOT NULL DEFAULT 0 CHECK (debited_credit >= 0),
        reinstated boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX stripe_disputes_top_up ON stripe_disputes (top_up_id)`);
    await q.query(
      `CREATE INDEX stripe_disputes_unattached ON stripe_disputes (payment_intent_id) WHERE top_up_id IS NULL`,
    );

    // Redemption codes: only the SHA-256 of each code is stored. A code credits once: the
    // conditional UPDATE of redeemed_at, and the CHECKs below, make it so.
    await q.query(`
      CREATE TABLE redemption_batches (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(200) NOT NULL,
        credit numeric(38,10) NOT NULL CHECK (credit > 0),
        count integer NOT NULL CHECK (count BETWEEN 1 AND 1000),
        expires_at timestamptz,
        disabled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      `CREATE INDEX redemption_batches_created ON redemption_batches (created_at DESC, id DESC)`,
    );
    await q.query(`
      CREATE TABLE redemption_codes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        batch_id uuid NOT NULL REFERENCES redemption_batches (id),
        code_hash char(64) NOT NULL,
        redeemed_by uuid REFERENCES accounts (id),
        redeemed_at timestamptz,
        disabled_at timestamptz,
        CONSTRAINT redemption_codes_code_hash_key UNIQUE (code_hash),
        CONSTRAINT redemption_codes_redeemed CHECK ((redeemed_by IS NULL) = (redeemed_at IS NULL)),
        CONSTRAINT redemption_codes_redeemed_or_disabled CHECK (redeemed_at IS NULL OR disabled_at IS NULL)
      )`);
    await q.query(`CREATE INDEX redemption_codes_batch ON redemption_codes (batch_id)`);
    // Failed redemption attempts, the throttle's memory: in PostgreSQL, so every instance
    // counts the same failures.
    await q.query(`
      CREATE TABLE redemption_attempts (
        id bigserial PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        attempted_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      `CREATE INDEX redemption_attempts_account ON redemption_attempts (account_id, attempted_at)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE redemption_attempts`);
    await q.query(`DROP TABLE redemption_codes`);
    await q.query(`DROP TABLE redemption_batches`);
    await q.query(`DROP TABLE stripe_disputes`);
    await q.query(`DROP TABLE stripe_refunds`);
    await q.query(`DROP INDEX top_ups_charge`);
    await q.query(`DROP INDEX top_ups_pending`);
    await q.query(`DROP INDEX top_ups_status_created`);
    await q.query(`
      ALTER TABLE top_ups
        DROP CONSTRAINT top_ups_account_idempotency_key,
        DROP CONSTRAINT top_ups_resolved,
        DROP CONSTRAINT top_ups_taken_back,
        DROP COLUMN resolved_at,
        DROP COLUMN resolution_note,
        DROP COLUMN resolution,
        DROP COLUMN request_hash,
        DROP COLUMN idempotency_key,
        DROP COLUMN charge_id,
        DROP COLUMN failed_refund_cash,
        DROP COLUMN disputed_credit`);
    await q.query(`DROP INDEX ledger_entries_account_type_created`);
    await q.query(
      `CREATE INDEX ledger_entries_account_type_created ON ledger_entries (account_id, type, created_at)
       WHERE type IN ('top_up', 'refund', 'adjustment')`,
    );
    // The ledger is append-only (a trigger refuses deletes), and balance = sum of entries must
    // keep holding: dispute and redemption entries already booked stay, so the old CHECK comes
    // back NOT VALID (enforced for new rows only).
    await q.query(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_type_check`);
    await q.query(`
      ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_type_check
        CHECK (type IN ('usage', 'top_up', 'refund', 'adjustment')) NOT VALID`);
  }
}
