import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import {
  IDEMPOTENCY_KEY_PATTERN,
  RequestWithHeaderErrors,
} from '../common/http/idempotency-key.js';

/** A malformed Idempotency-Key header (present, but not 1 to 255 printable characters). */
export const MALFORMED_KEY = Symbol('malformed Idempotency-Key');

/**
 * The optional `Idempotency-Key` header: the key, undefined when absent, or MALFORMED_KEY.
 * A malformed one is noted on the request so that a 400 for the body names it too.
 */
export const OptionalIdempotencyKey = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): string | typeof MALFORMED_KEY | undefined => {
    const req = ctx.switchToHttp().getRequest<RequestWithHeaderErrors>();
    const value = req.headers['idempotency-key'];
    if (value === undefined) return undefined;
    if (typeof value === 'string' && IDEMPOTENCY_KEY_PATTERN.test(value)) return value;
    req.headerErrors = [
      ...(req.headerErrors ?? []),
      {
        field: 'Idempotency-Key',
        message: 'Idempotency-Key header must be 1 to 255 printable characters',
      },
    ];
    return MALFORMED_KEY;
  },
);
