import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';

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
    const res = host.switchToHttp().getResponse<Response>();
    res
      .status(429)
      .setHeader('Retry-After', String(err.retryAfterSeconds))
      .json({ error: { code: 'too_many_attempts', message: err.message } });
  }
}
