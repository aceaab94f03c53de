import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { sqlRows } from '../database/sql.js';

export interface Login {
  id: string;
  accountId: string;
  email: string;
  /** null until an invited person sets a password. */
  passwordHash: string | null;
}

interface LoginRow {
  id: string;
  account_id: string;
  email: string;
  password_hash: string | null;
}

const toLogin = (r: LoginRow): Login => ({
  id: r.id,
  accountId: r.account_id,
  email: r.email,
  passwordHash: r.password_hash,
});

/** console_logins: who may sign in to which account. Emails arrive normalised (lower case). */
@Injectable()
export class LoginsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Null when the email already signs in somewhere (the unique index decides, race-safe). */
  async insert(
    l: { accountId: string; email: string; passwordHash: string },
    em: EntityManager,
  ): Promise<Login | null> {
    const rows = await sqlRows<LoginRow>(
      em,
      `INSERT INTO console_logins (account_id, email, password_hash) VALUES ($1, $2, $3)
       ON CONFLICT (email) DO NOTHING RETURNING id, account_id, email, password_hash`,
      [l.accountId, l.email, l.passwordHash],
    );
    return rows[0] ? toLogin(rows[0]) : null;
  }

  async findByEmail(email: string, em: EntityManager = this.ds.manager): Promise<Login | null> {
    const rows = await sqlRows<LoginRow>(
      em,
      `SELECT id, account_id, email, password_hash FROM console_logins WHERE email = $1`,
      [email],
    );
    return rows[0] ? toLogin(rows[0]) : null;
  }

  /**
   * Sets the password of `email` on `accountId`, creating the login if needed. Null when the
   * email signs in to another account: the conflict's WHERE leaves that row alone.
   */
  async setPassword(
    accountId: string,
    email: string,
    passwordHash: string,
    em: EntityManager,
  ): Promise<Login | null> {
    const rows = await sqlRows<LoginRow>(
      em,
      `INSERT INTO console_logins AS l (account_id, email, password_hash) VALUES ($1, $2, $3)
       ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()
         WHERE l.account_id = EXCLUDED.account_id
       RETURNING id, account_id, email, password_hash`,
      [accountId, email, passwordHash],
    );
    return rows[0] ? toLogin(rows[0]) : null;
  }
}
