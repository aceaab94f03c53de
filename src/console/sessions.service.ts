import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { Principal } from '../auth/principal.js';
import { hashSecret } from '../auth/secrets.js';
import { DomainError } from '../common/errors/domain-error.js';
import type { ConsoleConfig } from './console.config.js';
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sessionCookie } from './cookies.js';
import { LiveSession, SessionsRepository } from './sessions.repository.js';

/** A session ends after 7 days without use, and 30 days after sign-in whatever happens. */
export const SESSION_IDLE_SECONDS = 7 * 24 * 3600;
export const SESSION_ABSOLUTE_SECONDS = 30 * 24 * 3600;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The header a session's state-changing request must carry (a cross-site form cannot). */
export const CSRF_HEADER = 'x-requested-with';

export interface ConsoleRequest extends FastifyRequest {
  /** Set when the request was authenticated by a console session cookie. */
  consoleSession?: LiveSession & { tokenHash: string };
}

export interface StartedSession {
  /** The Set-Cookie header value carrying the token (shown to the browser only). */
  cookie: string;
  expiresAt: Date;
}

/** Server-side console sessions: the browser holds a random token, the database its hash. */
@Injectable()
export class ConsoleSessionsService {
  private readonly config: ConsoleConfig;

  constructor(
    @Inject(SessionsRepository) private readonly repo: SessionsRepository,
    @Inject(ConfigService) config: ConfigService,
  ) {
    this.config = config.getOrThrow<ConsoleConfig>('console');
  }

  /** Secure cookies behind https: the configured public URL says so, or the request does. */
  secure(req: FastifyRequest): boolean {
    return this.config.secureCookies || req.protocol === 'https';
  }

  async start(
    login: { id: string; accountId: string },
    req: FastifyRequest,
    em?: EntityManager,
  ): Promise<StartedSession> {
    const token = randomBytes(32).toString('base64url');
    const { expiresAt } = await this.repo.insert(
      {
        tokenHash: hashSecret(token),
        loginId: login.id,
        accountId: login.accountId,
        idleSeconds: SESSION_IDLE_SECONDS,
        absoluteSeconds: SESSION_ABSOLUTE_SECONDS,
      },
      em,
    );
    // The cookie outlives idle expiry; the server decides when the session is over.
    const cookie = sessionCookie(token, {
      secure: this.secure(req),
      maxAgeSeconds: SESSION_ABSOLUTE_SECONDS,
    });
    return { cookie, expiresAt };
  }

  clearCookie(req: FastifyRequest): string {
    return clearedSessionCookie(this.secure(req));
  }

  /** The live session a request's cookie names, or null (none, unknown, expired, ended). */
  async fromRequest(req: FastifyRequest): Promise<(LiveSession & { tokenHash: string }) | null> {
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (!token || token.length > 128) return null;
    const tokenHash = hashSecret(token);
    const live = await this.repo.findLive(tokenHash);
    if (!live) return null;
    if (live.stale) await this.repo.touch(tokenHash, SESSION_IDLE_SECONDS);
    return { ...live, tokenHash };
  }

  /**
   * For the global guard: the customer principal of a session cookie, or null. A request that
   * changes something must carry X-Requested-With, else 403: a cross-site form or link can
   * make the browser send the cookie, but cannot add that header.
   */
  async principalFor(req: ConsoleRequest): Promise<Principal | null> {
    const session = await this.fromRequest(req);
    if (!session) return null;
    if (!SAFE_METHODS.has(req.method) && !req.headers[CSRF_HEADER]) {
      throw new DomainError(
        'forbidden',
        'a request authenticated by the console session must send the X-Requested-With header',
      );
    }
    req.consoleSession = session;
    return { role: 'customer', accountId: session.accountId };
  }

  /** Ends the session the token names (sign-out); with `everywhere`, every session of its login. */
  async end(tokenHash: string, everywhere: boolean): Promise<void> {
    const loginId = await this.repo.delete(tokenHash);
    if (everywhere && loginId) await this.repo.deleteForLogin(loginId);
  }

  endAllForLogin(loginId: string, em?: EntityManager): Promise<void> {
    return this.repo.deleteForLogin(loginId, em);
  }

  purgeExpired(): Promise<void> {
    return this.repo.purgeExpired();
  }
}
