import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ConfigService } from '@nestjs/config';
import { AccountsService } from '../accounts/accounts.service.js';
import type { AppConfig } from '../config/app.config.js';
import { ConsoleSessionsService } from '../console/sessions.service.js';
import { DomainError } from '../common/errors/domain-error.js';
import { AuthedRequest, Principal, PUBLIC_KEY, Role, ROLES_KEY } from './principal.js';
import { hashForCompare, hashSecret, matchesAny } from './secrets.js';

/**
 * Resolves `Authorization: Bearer <key>` (or, without one, a console session cookie) to a
 * principal: 401 when missing or unknown, 403 when the key belongs to a role the route does
 * not admit.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly admins: { name: string; hash: Buffer }[];
  private readonly gatewayHashes: Buffer[];

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
    @Inject(ConsoleSessionsService) private readonly sessions: ConsoleSessionsService,
  ) {
    const auth = config.get('auth', { infer: true });
    this.admins = auth.adminKeys.map((k) => ({ name: k.name, hash: hashForCompare(k.key) }));
    this.gatewayHashes = auth.gatewayKeys.map(hashForCompare);
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets) ?? [];

    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    // Without an Authorization header, a console session cookie stands for its customer.
    const principal =
      req.headers.authorization === undefined
        ? await this.sessions.principalFor(req)
        : await this.resolve(req.headers.authorization);
    if (!principal) throw new DomainError('unauthorized', 'missing or unknown API key');
    if (!roles.includes(principal.role)) {
      throw new DomainError(
        'forbidden',
        `this key's role (${principal.role}) may not call this route`,
      );
    }
    req.principal = principal;
    return true;
  }

  private async resolve(header: string | undefined): Promise<Principal | null> {
    if (!header) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return null;
    const key = match[1];
    const presented = hashForCompare(key);
    // Each admin key is compared (constant time) so the matching one names the actor.
    let actor: string | null = null;
    for (const a of this.admins) if (matchesAny(presented, [a.hash])) actor = a.name;
    if (actor !== null) return { role: 'admin', actor };
    if (matchesAny(presented, this.gatewayHashes)) return { role: 'gateway' };
    if (key.startsWith('ck_')) {
      const accountId = await this.accounts.findIdByConsoleKeyHash(hashSecret(key));
      if (accountId) return { role: 'customer', accountId };
    }
    return null;
  }
}
