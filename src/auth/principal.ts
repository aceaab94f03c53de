import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

export type Role = 'admin' | 'gateway' | 'customer';

export type Principal =
  { role: 'admin'; actor: string } | { role: 'gateway' } | { role: 'customer'; accountId: string };

export interface AuthedRequest extends FastifyRequest {
  principal?: Principal;
}

export const ROLES_KEY = 'roles';
export const PUBLIC_KEY = 'public';

/** Which roles may call a route. Routes without it (and not @Public) are refused. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);
export const AnyRole = () =>
  SetMetadata(ROLES_KEY, ['admin', 'gateway', 'customer'] satisfies Role[]);
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export const CurrentPrincipal = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): Principal => {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    if (!req.principal) throw new Error('route has no principal; is it @Public?');
    return req.principal;
  },
);

/** The account id of a customer principal (routes under /v1/me are customer-only). */
export const CurrentAccountId = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): string => {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const p = req.principal;
    if (!p || p.role !== 'customer') throw new Error('route is not customer-only');
    return p.accountId;
  },
);

/** The name of the admin key that made the request (routes under /v1/admin are admin-only). */
export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): string => {
  const req = ctx.switchToHttp().getRequest<AuthedRequest>();
  const p = req.principal;
  if (!p || p.role !== 'admin') throw new Error('route is not admin-only');
  return p.actor;
});
