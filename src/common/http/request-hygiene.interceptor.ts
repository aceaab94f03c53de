import {
  CallHandler,
  ExecutionContext,
  Injectable,
  NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { Observable } from 'rxjs';
import type { ErrorDetail } from '../errors/domain-error.js';
import { validationError } from './validation.js';

/** Deepest JSON nesting any request of ours has (a batch event's usage details is 4). */
export const MAX_JSON_DEPTH = 16;

export const SKIP_HYGIENE = 'skipHygiene';
/** For routes that must see the body exactly as sent (the Stripe webhook checks its own). */
export const SkipHygiene = () => SetMetadata(SKIP_HYGIENE, true);

// A NUL, or a UTF-16 surrogate without its pair: PostgreSQL stores neither in text or jsonb.
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function inspect(value: unknown, path: string, depth: number, out: ErrorDetail[]): void {
  // (the caller's depth budget is MAX_JSON_DEPTH levels below `path`)
  if (out.length >= 20) return;
  if (typeof value === 'string') {
    if (UNSTORABLE.test(value))
      out.push({ field: path || 'body', message: 'contains a NUL or an unpaired surrogate' });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth > MAX_JSON_DEPTH) {
    out.push({ field: path || 'body', message: `is nested deeper than ${MAX_JSON_DEPTH} levels` });
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const field = path ? `${path}.${k}` : k;
    if (UNSTORABLE.test(k))
      out.push({ field, message: 'field name contains a NUL or an unpaired surrogate' });
    inspect(v, field, depth + 1, out);
  }
}

/** What of `value` no handler could store or validate safely, one detail per field. */
export function findUnstorable(value: unknown, path = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  inspect(value, path, 0, out);
  return out;
}

/**
 * Refuses, with a 400 naming the field, input no handler can store or validate safely:
 * strings PostgreSQL rejects and bodies nested deep enough to exhaust the validator's stack.
 * Runs before the pipes, so validation never sees them.
 */
@Injectable()
export class RequestHygieneInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (
      ctx.getType() === 'http' &&
      !this.reflector.getAllAndOverride<boolean>(SKIP_HYGIENE, [ctx.getHandler(), ctx.getClass()])
    ) {
      const req = ctx.switchToHttp().getRequest<FastifyRequest>();
      const details = [
        ...findUnstorable(req.params),
        ...findUnstorable(req.query),
        ...findUnstorable(req.body),
      ];
      if (details.length > 0) throw validationError(details);
    }
    return next.handle();
  }
}
