import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Spend control: holds for work in flight (money set aside on the account and the token, not
 * a ledger entry), credit limits, review of outsized charges, and the admin's limits on a
 * token that its customer may tighten but not loosen.
 */
export class SpendControl1764500000000 implements MigrationInterface {
  name = 'SpendControl1764500000000';

  async up(q: QueryRunner): Promise<void> {
    // `held` is the sum of the account's active holds, changed only under the account's row
    // lock together with the holds themselves (reconcile checks it).
    await q.query(`
      ALTER TABLE accounts
        ADD COLUMN held numeric(38,10) NOT NULL DEFAULT 0 CONSTRAINT accounts_held_nonnegative CHECK (held >= 0),
        ADD COLUMN credit_limit numeric(38,10) NOT NULL DEFAULT 0
          CONSTRAINT accounts_credit_limit_nonnegative CHECK (credit_limit >= 0)`);
    // admin_limits: the limits an admin set on the token (group, spendLimit, expiresAt,
    // allowedModels), the bounds its customer may tighten within but never loosen.
    await q.query(`
      ALTER TABLE api_tokens
        ADD COLUMN held numeric(38,10) NOT NULL DEFAULT 0 CONSTRAINT api_tokens_held_nonnegative CHECK (held >= 0),
        ADD COLUMN admin_limits jsonb`);
    // A group is selectable only when an admin says so.
    await q.query(`ALTER TABLE groups ALTER COLUMN selectable SET DEFAULT false`);

    await q.query(`
      ALTER TABLE price_versions
        ADD COLUMN review_above numeric(20,10) CONSTRAINT price_versions_review_above_positive CHECK (review_above > 0),
        ADD COLUMN hold_amount numeric(20,10) CONSTRAINT price_versions_hold_amount_nonnegative CHECK (hold_amount >= 0)`);
    // Versions written before this migration: the seeded models get the seeded threshold and
    // hold (as a fresh database's seed does), every other tokens version a per-image hold of
    // its highest reference price (0.25 without one).
    await q.query(`
      UPDATE price_versions SET review_above = 5.00
      WHERE model IN ('gpt-image-2', 'gpt-image-2-all', 'gpt-image-2-vip')`);
    await q.query(`
      UPDATE price_versions p SET hold_amount = CASE WHEN model = 'gpt-image-2' THEN 0.25 ELSE COALESCE(
        (SELECT max((r ->> 'price')::numeric) FROM jsonb_array_elements(p.reference_prices) r), 0.25) END
      WHERE mode = 'tokens'`);
    await q.query(`
      ALTER TABLE price_versions ADD CONSTRAINT price_versions_tokens_hold
        CHECK (mode <> 'tokens' OR hold_amount IS NOT NULL)`);

    // review: priced above the version's reviewAbove, stored with its would-be charge and not
    // booked; an admin approves it (outcome charged, reviewed_at set, booked then) or voids it.
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_outcome_check`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_reason_check`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_outcome_reason`);
    await q.query(`ALTER TABLE usage_events ADD COLUMN reviewed_at timestamptz`);
    await q.query(`
      ALTER TABLE usage_events
        ADD CONSTRAINT usage_events_outcome_check CHECK (outcome IN ('charged', 'skipped', 'review', 'voided')),
        ADD CONSTRAINT usage_events_reason_check
          CHECK (reason IN ('moderated', 'upstream_error', 'timeout', 'no_output', 'above_review_limit')),
        ADD CONSTRAINT usage_events_outcome_reason CHECK (
          (outcome = 'charged' AND reason IS NULL)
          OR (outcome = 'skipped' AND reason IS NOT NULL AND reason <> 'above_review_limit' AND charge = 0)
          OR (outcome IN ('review', 'voided') AND reason = 'above_review_limit')
        )`);
    // The admin's review queue: only undecided events, so the index stays tiny.
    await q.query(
      `CREATE INDEX usage_events_review ON usage_events (recorded_at DESC, id DESC) WHERE outcome = 'review'`,
    );
    await q.query(`ALTER TABLE usage_daily ADD COLUMN review bigint NOT NULL DEFAULT 0`);

    // A hold per gateway request id (the usage event's request id). Not a ledger entry: it
    // moves no balance; it counts against balance − held while active and not expired.
    await q.query(`
      CREATE TABLE holds (
        request_id varchar(200) PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        token_id uuid NOT NULL REFERENCES api_tokens (id),
        model varchar(128) NOT NULL,
        amount numeric(38,10) NOT NULL CHECK (amount >= 0),
        status varchar(16) NOT NULL DEFAULT 'active'
          CHECK (status IN ('active', 'settled', 'released', 'expired')),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        closed_at timestamptz,
        CONSTRAINT holds_closed CHECK ((status = 'active') = (closed_at IS NULL))
      )`);
    await q.query(
      `CREATE INDEX holds_active_account ON holds (account_id, created_at DESC, request_id DESC) WHERE status = 'active'`,
    );
    await q.query(`CREATE INDEX holds_active_expiry ON holds (expires_at) WHERE status = 'active'`);
    // An account's expired-but-unswept holds (authorize sweeps them; reads subtract them): a
    // range read of just those, not of every active hold the account has.
    await q.query(
      `CREATE INDEX holds_active_account_expiry ON holds (account_id, expires_at) WHERE status = 'active'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE holds`);
    await q.query(`ALTER TABLE usage_daily DROP COLUMN review`);
    await q.query(`DROP INDEX usage_events_review`);
    // Reviewed events have no place in the older schema.
    await q.query(`DELETE FROM usage_events WHERE outcome IN ('review', 'voided')`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_outcome_reason`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_reason_check`);
    await q.query(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_outcome_check`);
    await q.query(`ALTER TABLE usage_events DROP COLUMN reviewed_at`);
    await q.query(`
      ALTER TABLE usage_events
        ADD CONSTRAINT usage_events_outcome_check CHECK (outcome IN ('charged', 'skipped')),
        ADD CONSTRAINT usage_events_reason_check CHECK (reason IN ('moderated', 'upstream_error', 'timeout', 'no_output')),
        ADD CONSTRAINT usage_events_outcome_reason CHECK (
          (outcome = 'charged' AND reason IS NULL) OR (outcome = 'skipped' AND reason IS NOT NULL AND charge = 0)
        )`);
    await q.query(`ALTER TABLE price_versions DROP CONSTRAINT price_versions_tokens_hold`);
    await q.query(`ALTER TABLE price_versions DROP COLUMN hold_amount, DROP COLUMN review_above`);
    await q.query(`ALTER TABLE groups ALTER COLUMN selectable SET DEFAULT true`);
    await q.query(`ALTER TABLE api_tokens DROP COLUMN admin_limits, DROP COLUMN held`);
    await q.query(`ALTER TABLE accounts DROP COLUMN credit_limit, DROP COLUMN held`);
  }
}
