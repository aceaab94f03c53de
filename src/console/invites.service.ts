import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { AuditService } from '../audit/audit.service.js';
import { hashSecret } from '../auth/secrets.js';
import { conflict, invalid } from '../common/errors/domain-error.js';
import { normalizeEmail } from './console-auth.service.js';
import type { ConsoleConfig } from './console.config.js';
import { toInviteDto, toInviteInfoDto } from './console.mapper.js';
import { InviteDto, InviteInfoDto } from './dto/console.dto.js';
import { InvitesRepository } from './invites.repository.js';
import { LoginsRepository } from './logins.repository.js';

/** How long an invite link stays usable. */
export const INVITE_TTL_SECONDS = 72 * 3600;

/**
 * Admin invites: a one-time link to set a password for an email on an account. For an email
 * that already signs in to that account, the link resets its password.
 */
@Injectable()
export class InvitesService {
  private readonly config: ConsoleConfig;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(InvitesRepository) private readonly invites: InvitesRepository,
    @Inject(LoginsRepository) private readonly logins: LoginsRepository,
    @Inject(AuditService) private readonly audit: AuditService,
    @Inject(ConfigService) config: ConfigService,
  ) {
    this.config = config.getOrThrow<ConsoleConfig>('console');
  }

  /** Recorded in the audit log with the invite, in one transaction (never the link itself). */
  async invite(accountId: string, rawEmail: string, actor: string): Promise<InviteDto> {
    const account = await this.accounts.get(accountId);
    const email = normalizeEmail(rawEmail);
    const token = randomBytes(32).toString('base64url');
    const invite = await this.ds.transaction(async (em) => {
      const existing = await this.logins.findByEmail(email, em);
      if (existing && existing.accountId !== account.id) {
        throw conflict('this email already signs in to another account');
      }
      const created = await this.invites.replace(
        {
          accountId: account.id,
          email,
          tokenHash: hashSecret(token),
          ttlSeconds: INVITE_TTL_SECONDS,
        },
        em,
      );
      await this.audit.record(
        {
          actor,
          action: 'account.invite',
          target: `account:${account.id}`,
          before: null,
          after: { email, expiresAt: created.expiresAt.toISOString() },
        },
        em,
      );
      return created;
    });
    // In the fragment: browsers never send it to a server, so it stays out of access logs.
    return toInviteDto(invite, `${this.config.publicBaseUrl}/console/set-password#token=${token}`);
  }

  /** What the set-password page shows before the password is chosen. */
  async lookup(token: string): Promise<InviteInfoDto> {
    const invite = await this.invites.findUsable(hashSecret(token));
    if (!invite) throw invalid('token', 'this link is invalid, used or expired; ask for a new one');
    const account = await this.accounts.get(invite.accountId);
    return toInviteInfoDto(invite, account);
  }
}
