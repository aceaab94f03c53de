import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface LiveSession {
  accountId: string;
  loginId: string;
  email: string;
  expiresAt: Date;
  /** True when the session was last touched long enough ago to slide its expiry now. */
  stale: boolean;
}

interface LiveSessionRow {
  account_id: string;
  login_id: string;
  email: string;
  expires_at: Date;
  stale: boolean;
}

/** Sliding the idle expiry at most this often keeps reads from writing on every request. */
const TOUCH_EVERY = '5 minutes';

/**
 * console_sessions, keyed by the SHA-256 of the session token. Rotating the account's console
 * key deletes its sessions by trigger (migration 1764700000000) in the rotation's statement.
 */
@Injectable()
export class SessionsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insert(
    s: {
      tokenHash: string;
      loginId: string;
      accountId: string;
      idleSeconds: number;
      absoluteSeconds: number;
    },
    em: EntityManager = this.ds.manager,
  ): Promise<{ expiresAt: Date }> {
    const rows = await sqlRows<{ expires_at: Date }>(
      em,
      `INSERT INTO console_sessions (token_hash, login_id, account_id, expires_at, absolute_expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4), now() + make_interval(secs => $5))
       RETURNING expires_at`,
      [s.tokenHash, s.loginId, s.accountId, s.idleSeconds, s.absoluteSeconds],
    );
    return { expiresAt: rows[0].expires_at };
  }

  async findLive(tokenHash: string): Promise<LiveSession | null> {
    const rows = await sqlRows<LiveSessionRow>(
      this.ds,
      `SELECT s.account_id, s.login_id, l.email, s.expires_at,
              s.last_seen_at < now() - interval '${TOUCH_EVERY}' AS stale
       FROM console_sessions s JOIN console_logins l ON l.id = s.login_id
       WHERE s.token_hash = $1 AND s.expires_at > now()`,
      [tokenHash],
    );
    const r = rows[0];
    return r
      ? {
          accountId: r.account_id,
          loginId: r.login_id,
          email: r.email,
          expiresAt: r.expires_at,
          stale: r.stale,
        }
      : null;
  }

  /** Slides the idle expiry, never past the absolute one. */
  async touch(tokenHash: string, idleSeconds: number): Promise<void> {
    await this.ds.query(
      `UPDATE console_sessions
       SET last_seen_at = now(), expires_at = LEAST(absolute_expires_at, now() + make_interval(secs => $2))
       WHERE token_hash = $1 AND expires_at > now()`,
      [tokenHash, idleSeconds],
    );
  }

  /** Ends one session; the login it belonged to, or null when there was none. */
  async delete(tokenHash: string): Promise<string | null> {
    const rows = await sqlRows<{ login_id: string }>(
      this.ds,
      `DELETE FROM console_sessions WHERE token_hash = $1 RETURNING login_id`,
      [tokenHash],
    );
    return rows[0]?.login_id ?? null;
  }

  /** Ends every session of a login (sign out everywhere, a new password). */
  async deleteForLogin(loginId: string, em: EntityManager = this.ds.manager): Promise<void> {
    await em.query(`DELETE FROM console_sessions WHERE login_id = $1`, [loginId]);
  }

  async purgeExpired(): Promise<void> {
    await this.ds.query(`DELETE FROM console_sessions WHERE expires_at <= now()`);
  }
}
