import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The customer console: logins (email and password hash) of an account, server-side sessions,
 * one-time invite links, and the sign-in throttle counters (in PostgreSQL, so that every
 * instance counts the same failures).
 */
export class Console1764700000000 implements MigrationInterface {
  name = 'Console1764700000000';

  async up(q: QueryRunner): Promise<void> {
    // An account may have several logins (an admin invites colleagues); an email signs in to
    // one account only. Emails are stored trimmed and lower-cased. password_hash is the scrypt
    // string (see src/console/passwords.ts); null until an invited person sets one.
    await q.query(`
      CREATE TABLE console_logins (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES accounts (id),
        email varchar(320) NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
        password_hash text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT console_logins_email_key UNIQUE (email)
      )`);
    await q.query(`CREATE INDEX console_logins_account_id ON console_logins (account_id)`);

    // Only the SHA-256 of the session token is stored: whoever reads the table cannot sign in.
    // expires_at slides with use (idle timeout) but never past absolute_expires_at.
    await q.query(`
      CREATE TABLE console_sessions (
        token_hash char(64) PRIMARY KEY,
        login_id uuid NOT NULL REFERENCES console_logins (id) ON DELETE CASCADE,
        account_id uuid NOT NULL REFERENCES accounts (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        absolute_expires_at timestamptz NOT NULL,
        CHECK (expires_at <= absolute_expires_at)
      )`);
    await q.query(`CREATE INDEX console_sessions_account_id ON console_sessions (account_id)`);
    await q.query(`CREATE INDEX console_sessions_login_id ON console_sessions (login_id)`);
    await q.query(`CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at)`);

    // Rotating an account's console key ends every console session of the account, in the same
    // statement as the rotation, whichever code path rotates it.
    await q.query(`
      CREATE FUNCTION console_sessions_end_on_key_rotation() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM console_sessions WHERE account_id = NEW.id;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER console_sessions_end_on_key_rotation
      AFTER UPDATE OF console_key_hash ON accounts
      FOR EACH ROW WHEN (OLD.console_key_hash IS DISTINCT FROM NEW.console_key_hash)
      EXECUTE FUNCTION console_sessions_end_on_key_rotation()`);

    // A one-time set-password link: the token's SHA-256 only; used_at set once, race-safe.
    await q.query(`
      CREATE TABLE console_invites (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES accounts (id),
        email varchar(320) NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
        token_hash char(64) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        CONSTRAINT console_invites_token_hash_key UNIQUE (token_hash)
      )`);
    await q.query(
      `CREATE INDEX console_invites_account_email ON console_invites (account_id, email) WHERE used_at IS NULL`,
    );

    // Fixed one-minute windows per key ("email:<sha256>", "address:<ip>", "sign-up:<ip>"),
    // counted by one upsert so concurrent attempts on any instance are all counted.
    await q.query(`
      CREATE TABLE console_throttle (
        key varchar(128) PRIMARY KEY,
        window_start timestamptz NOT NULL,
        attempts integer NOT NULL CHECK (attempts >= 0)
      )`);
    await q.query(`CREATE INDEX console_throttle_window_start ON console_throttle (window_start)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE console_throttle`);
    await q.query(`DROP TABLE console_invites`);
    await q.query(`DROP TRIGGER console_sessions_end_on_key_rotation ON accounts`);
    await q.query(`DROP FUNCTION console_sessions_end_on_key_rotation()`);
    await q.query(`DROP TABLE console_sessions`);
    await q.query(`DROP TABLE console_logins`);
  }
}
