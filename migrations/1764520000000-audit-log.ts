import { MigrationInterface, QueryRunner } from 'typeorm';

/** Every admin change, with its actor, recorded in the change's own transaction; append-only. */
export class AuditLog1764520000000 implements MigrationInterface {
  name = 'AuditLog1764520000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        actor varchar(64) NOT NULL,
        action varchar(64) NOT NULL,
        target text NOT NULL,
        before jsonb,
        after jsonb,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await q.query(`CREATE INDEX audit_log_actor ON audit_log (actor, id DESC)`);
    await q.query(`CREATE INDEX audit_log_target ON audit_log (target, id DESC)`);
    await q.query(`
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
      END $$`);
    await q.query(`
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_log`);
    await q.query(`DROP FUNCTION audit_log_append_only()`);
  }
}
