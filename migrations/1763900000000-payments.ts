import { MigrationInterface, QueryRunner } from 'typeorm';

/** Promotions, top-ups paid through Stripe Checkout, and the Stripe events already processed. */
export class Payments1763900000000 implements MigrationInterface {
  name = 'Payments1763900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE promotions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(200) NOT NULL,
        rate numeric(20,10) NOT NULL CHECK (rate > 0 AND rate <= 1),
        starts_at timestamptz,
        ends_at timestamptz,
        min_credit numeric(38,10) NOT NULL DEFAULT 0 CHECK (min_credit >= 0),
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT promotions_window CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at)
      )`);
    await q.query(`CREATE INDEX promotions_created_at_id ON promotions (created_at DESC, id DESC)`);

    await q.query(`
      CREATE TABLE top_ups (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES accounts (id),
        status varchar(16) NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'paid', 'failed', 'expired', 'needs_review')),
        credit numeric(38,10) NOT NULL CHECK (credit > 0),
        price numeric(38,2) NOT NULL CHECK (price > 0),
        currency char(3) NOT NULL DEFAULT 'usd',
        promotion_id uuid REFERENCES promotions (id) ON DELETE SET NULL,
        promotion jsonb,
        checkout_session_id text,
        checkout_url text,
        payment_intent_id text,
        amount_paid numeric(38,2),
        refunded_cash numeric(38,2) NOT NULL DEFAULT 0 CHECK (refunded_cash >= 0),
        refunded_credit numeric(38,10) NOT NULL DEFAULT 0 CHECK (refunded_credit >= 0),
        review_reason text,
        paid_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT top_ups_checkout_session_id_key UNIQUE (checkout_session_id)
      )`);
    await q.query(`CREATE INDEX top_ups_account_created ON top_ups (account_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX top_ups_payment_intent ON top_ups (payment_intent_id)`);

    // Every Stripe event id is processed at most once: the primary key says so.
    await q.query(`
      CREATE TABLE stripe_events (
        id text PRIMARY KEY,
        type text NOT NULL,
        top_up_id uuid REFERENCES top_ups (id),
        outcome text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE stripe_events`);
    await q.query(`DROP TABLE top_ups`);
    await q.query(`DROP TABLE promotions`);
  }
}
