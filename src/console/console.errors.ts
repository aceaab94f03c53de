import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';

/**
 * Too many attempts for an email or an address: 429 with Retry-After. Kept in the console
 * module (with its own filter) so the shared error-code union does not change for it.
 */
export class ThrottledError extends Error {
  constructor(
    public readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(message);
    this.name = 'ThrottledError';
  }
}

@Catch(ThrottledError)
export class ThrottledErrorFilter implements ExceptionFilter {
  catch(err: ThrottledError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<FastifyReply>();
    res
      .status(429)
      .header('Retry-After', String(err.retryAfterSeconds))
      .send({ error: { code: 'too_many_attempts', message: err.message } });
  }
}
