import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { ErrorDetail } from '../errors/domain-error.js';

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface RequestWithHeaderErrors extends FastifyRequest {
  headerErrors?: ErrorDetail[];
}

/**
 * The `Idempotency-Key` header, or undefined when missing or malformed. A bad header is noted
 * on the request so that a 400 for the body names it too (the error filter merges them).
 */
export const IdempotencyKey = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): string | undefined => {
    const req = ctx.switchToHttp().getRequest<RequestWithHeaderErrors>();
    const value = req.headers['idempotency-key'];
    if (typeof value === 'string' && IDEMPOTENCY_KEY_PATTERN.test(value)) return value;
    req.headerErrors = [
      ...(req.headerErrors ?? []),
      {
        field: 'Idempotency-Key',
        message: 'Idempotency-Key header is required: 1 to 255 printable characters',
      },
    ];
    return undefined;
  },
);
