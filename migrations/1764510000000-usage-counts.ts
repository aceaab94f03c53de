import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What an event counts (tokens, billed images) is computed once, in code (pricing/counts.ts),
 * and stored with the event, so roll-ups, summaries and exports read the same numbers instead
 * of each re-deriving them from the raw event.
 */
export class UsageCounts1764510000000 implements MigrationInterface {
  name = 'UsageCounts1764510000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE usage_events
        ADD COLUMN input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
        ADD COLUMN output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
        ADD COLUMN images integer NOT NULL DEFAULT 0 CHECK (images >= 0)`);
    await q.query(`
      UPDATE usage_events SET
        input_tokens = COALESCE((event -> 'usage' ->> 'inputTokens')::bigint, 0),
        output_tokens = COALESCE((event -> 'usage' ->> 'outputTokens')::bigint, 0),
        images = CASE WHEN outcome = 'skipped' THEN 0 ELSE COALESCE((event ->> 'images')::integer, 1) END`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE usage_events DROP COLUMN images, DROP COLUMN output_tokens, DROP COLUMN input_tokens`,
    );
  }
}
