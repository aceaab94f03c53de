import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface Invite {
  accountId: string;
  email: string;
  expiresAt: Date;
}

interface InviteRow {
  account_id: string;
  email: string;
  expires_at: Date;
}

const toInvite = (r: InviteRow): Invite => ({
  accountId: r.account_id,
  email: r.email,
  expiresAt: r.expires_at,
});

/** console_invites: one-time set-password links, stored as the SHA-256 of their token. */
@Injectable()
export class InvitesRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** A new link for (account, email); earlier unused links for the same pair stop working. */
  async replace(
    i: { accountId: string; email: string; tokenHash: string; ttlSeconds: number },
    em: EntityManager,
  ): Promise<Invite> {
    await em.query(
      `DELETE FROM console_invites WHERE account_id = $1 AND email = $2 AND used_at IS NULL`,
      [i.accountId, i.email],
    );
    const rows = await sqlRows<InviteRow>(
      em,
      `INSERT INTO console_invites (account_id, email, token_hash, expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       RETURNING account_id, email, expires_at`,
      [i.accountId, i.email, i.tokenHash, i.ttlSeconds],
    );
    return toInvite(rows[0]);
  }

  async findUsable(tokenHash: string): Promise<Invite | null> {
    const rows = await sqlRows<InviteRow>(
      this.ds,
      `SELECT account_id, email, expires_at FROM console_invites
       WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()`,
      [tokenHash],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }

  /**
   * Uses the link once: of concurrent claims, the conditional UPDATE lets exactly one through
   * (the others wait on the row lock, then see used_at set and get null).
   */
  async claim(tokenHash: string, em: EntityManager): Promise<Invite | null> {
    const rows = await sqlRows<InviteRow>(
      em,
      `UPDATE console_invites SET used_at = now()
       WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
       RETURNING account_id, email, expires_at`,
      [tokenHash],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }
}
