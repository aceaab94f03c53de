import { MigrationInterface, QueryRunner } from 'typeorm';

/** Usage events: one row per gateway request, charged or skipped, unique by request id. */
export class UsageEvents1763800000000 implements MigrationInterface {
  name = 'UsageEvents1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE usage_events (
        id bigserial PRIMARY KEY,
        request_id varchar(200) NOT NULL,
        request_hash char(64) NOT NULL,
        account_id uuid NOT NULL REFERENCES accounts (id),
        token_id uuid NOT NULL REFERENCES api_tokens (id),
        model varchar(128) NOT NULL,
        outcome varchar(16) NOT NULL CHECK (outcome IN ('charged', 'skipped')),
        reason varchar(32) CHECK (reason IN ('moderated', 'upstream_error', 'timeout', 'no_output')),
        charge numeric(38,10) NOT NULL CHECK (charge >= 0),
        group_name varchar(64) NOT NULL,
        ratio numeric(20,10) NOT NULL,
        price_version_id bigint NOT NULL REFERENCES price_versions (id),
        price_version integer NOT NULL,
        breakdown jsonb NOT NULL,
        event jsonb NOT NULL,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        -- The database, not the code, decides that a request is charged once.
        CONSTRAINT usage_events_request_id_key UNIQUE (request_id),
        CONSTRAINT usage_events_outcome_reason CHECK (
          (outcome = 'charged' AND reason IS NULL) OR (outcome = 'skipped' AND reason IS NOT NULL AND charge = 0)
        )
      )`);
    await q.query(`CREATE INDEX usage_events_account_recorded ON usage_events (account_id, recorded_at DESC, id DESC)`);
    await q.query(`CREATE INDEX usage_events_token ON usage_events (token_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE usage_events`);
  }
}
