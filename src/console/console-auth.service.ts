import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { AdjustmentsService } from '../accounts/adjustments.service.js';
import { hashSecret } from '../auth/secrets.js';
import { conflict, DomainError, invalid } from '../common/errors/domain-error.js';
import { money } from '../common/money/money.js';
import type { ConsoleConfig } from './console.config.js';
import { ThrottledError } from './console.errors.js';
import { toSessionDto } from './console.mapper.js';
import { SessionDto, SetPasswordDto, SignInDto, SignUpDto } from './dto/console.dto.js';
import { InvitesRepository } from './invites.repository.js';
import { LoginsRepository } from './logins.repository.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { LiveSession } from './sessions.repository.js';
import { ConsoleSessionsService, StartedSession } from './sessions.service.js';
import { ThrottleRepository } from './throttle.repository.js';

/** More failures than this in a minute, for an email or an address, answer 429. */
export const MAX_FAILURES_PER_MINUTE = 10;
/** Sign-ups from one address in a minute (trial credit makes mass sign-up worth throttling). */
export const MAX_SIGN_UPS_PER_MINUTE = 10;

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** Throttle keys never hold an email in clear: a hash is enough to count by. */
const emailKey = (email: string): string =>
  `email:${createHash('sha256').update(email).digest('hex')}`;
const addressKey = (req: FastifyRequest): string => `address:${req.ip ?? 'unknown'}`;

/** A sign-in's answer: the Set-Cookie value for the controller to send, and the body. */
export interface SignedIn {
  cookie: string;
  body: SessionDto;
}

const signedIn = (
  session: StartedSession,
  email: string,
  account: SessionDto['account'],
): SignedIn => ({
  cookie: session.cookie,
  body: toSessionDto({ email, expiresAt: session.expiresAt }, account),
});

/** Sign-up, sign-in and setting a password from an invite link. */
@Injectable()
export class ConsoleAuthService {
  private readonly config: ConsoleConfig;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(AdjustmentsService) private readonly adjustments: AdjustmentsService,
    @Inject(LoginsRepository) private readonly logins: LoginsRepository,
    @Inject(InvitesRepository) private readonly invites: InvitesRepository,
    @Inject(ThrottleRepository) private readonly throttle: ThrottleRepository,
    @Inject(ConsoleSessionsService) private readonly sessions: ConsoleSessionsService,
    @Inject(ConfigService) config: ConfigService,
  ) {
    this.config = config.getOrThrow<ConsoleConfig>('console');
  }

  /**
   * Creates the account, its login, the trial credit (an adjustment, when SIGNUP_TRIAL_CREDIT
   * is above zero) and a session, all in one transaction: a taken email leaves nothing behind.
   */
  async signUp(dto: SignUpDto, req: FastifyRequest): Promise<SignedIn> {
    if (!this.config.signupEnabled) {
      throw new DomainError('forbidden', 'sign-up is disabled here; ask for an invite');
    }
    await this.limit([`sign-up:${req.ip ?? 'unknown'}`], MAX_SIGN_UPS_PER_MINUTE, 'sign-ups');
    const email = normalizeEmail(dto.email);
    const passwordHash = await hashPassword(dto.password);
    const trial = money(this.config.signupTrialCredit);
    return this.ds.transaction(async (em) => {
      const account = await this.accounts.create({ name: dto.name.trim(), email }, em);
      const login = await this.logins.insert({ accountId: account.id, email, passwordHash }, em);
      if (!login) throw conflict('an account with this email already exists; sign in instead');
      if (trial.gt(0)) {
        await this.adjustments.create(
          account.id,
          'console-sign-up-trial-credit',
          { amount: this.config.signupTrialCredit, reason: 'Sign-up trial credit' },
          em,
        );
      }
      const session = await this.sessions.start(login, req, em);
      // Read through the transaction: the account is not committed yet.
      return signedIn(session, email, await this.accounts.getMe(account.id, em));
    });
  }

  /**
   * The same 401 for an unknown email, a login without a password and a wrong password (and
   * the same scrypt work for each). Each attempt is counted before the password is checked, so
   * concurrent guesses are all counted; a success takes its attempt back.
   */
  async signIn(dto: SignInDto, req: FastifyRequest): Promise<SignedIn> {
    const email = normalizeEmail(dto.email);
    const keys = [emailKey(email), addressKey(req)];
    await this.limit(keys, MAX_FAILURES_PER_MINUTE, 'failed sign-ins');
    const login = await this.logins.findByEmail(email);
    const ok = await verifyPassword(dto.password, login?.passwordHash ?? null);
    if (!login || !ok) throw new DomainError('unauthorized', 'email or password is wrong');
    await this.throttle.forgive(keys);
    // Housekeeping on the (rare) successful sign-in: old windows and ended sessions go.
    await this.throttle.purge();
    await this.sessions.purgeExpired();
    const session = await this.sessions.start(login, req);
    return signedIn(session, email, await this.accounts.getMe(login.accountId));
  }

  /**
   * Uses an invite link once: sets (or resets) the password of the invited email on the
   * inviting account, ends that login's other sessions and signs it in.
   */
  async setPassword(dto: SetPasswordDto, req: FastifyRequest): Promise<SignedIn> {
    const passwordHash = await hashPassword(dto.password);
    return this.ds.transaction(async (em) => {
      const invite = await this.invites.claim(hashSecret(dto.token), em);
      if (!invite)
        throw invalid('token', 'this link is invalid, used or expired; ask for a new one');
      const login = await this.logins.setPassword(invite.accountId, invite.email, passwordHash, em);
      if (!login) throw conflict('this email already signs in to another account');
      await this.sessions.endAllForLogin(login.id, em);
      const session = await this.sessions.start(login, req, em);
      return signedIn(session, login.email, await this.accounts.getMe(invite.accountId, em));
    });
  }

  /** The signed-in login and its account, for a request a session cookie authenticated. */
  async current(s: LiveSession): Promise<SessionDto> {
    return toSessionDto(s, await this.accounts.getMe(s.accountId));
  }

  private async limit(keys: string[], max: number, what: string): Promise<void> {
    const counts = await this.throttle.count(keys);
    const over = counts.filter((c) => c.attempts > max);
    if (over.length > 0) {
      const retry = Math.max(...over.map((c) => c.retryAfterSeconds));
      throw new ThrottledError(
        retry,
        `too many ${what} in a minute; try again in ${retry} second${retry === 1 ? '' : 's'}`,
      );
    }
  }
}
