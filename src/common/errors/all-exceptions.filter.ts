import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { RequestWithHeaderErrors } from '../http/idempotency-key.js';
import type { IdentifiedRequest } from '../http/request-context.js';
import type { LogFields } from '../logging/logger.js';
import { DomainError, ErrorCode, ErrorDetail, statusOf } from './domain-error.js';

interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

/** Every error leaves as the contract's body; anything unknown is a logged 500 without details. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<FastifyReply>();
    const req = host.switchToHttp().getRequest<RequestWithHeaderErrors & IdentifiedRequest>();
    const [status, body] = this.toBody(exception);
    // A bad header and a bad body are reported together, every failing field named once.
    if (body.error.code === 'validation_failed' && req.headerErrors?.length) {
      const details = [...req.headerErrors, ...(body.error.details ?? [])];
      const fields = [...new Set(details.map((d) => d.field))];
      body.error = {
        ...body.error,
        message: `invalid fields: ${fields.join(', ')}`,
        details: dedupe(details),
      };
    }
    // Coded domain errors (e.g. 503 payments_not_configured) are answers, not faults.
    if (status >= 500 && !(exception instanceof DomainError)) {
      const err = exception instanceof Error ? exception : new Error(String(exception));
      // The line names its request, as the request's access line does (PinoNestLogger).
      const line: LogFields = { msg: `${err.name}: ${err.message}`, reqId: req.id };
      // A lock or statement timeout is load, answered 503 for a retry: a warning, no stack.
      if (body.error.code === 'service_unavailable') this.logger.warn(line);
      else this.logger.error(line, err.stack);
    }
    if (res.sent || res.raw.headersSent) return;
    // A body we refused without reading (no key, too large) is not worth receiving.
    if (!req.raw.readableEnded) res.header('Connection', 'close');
    if (status === 503 && body.error.code === 'service_unavailable') res.header('Retry-After', '1');
    res.status(status).send(body);
  }

  private toBody(exception: unknown): [number, ErrorBody] {
    // A row lock not granted within lock_timeout, or a statement past statement_timeout: the
    // database is busy with that account, not broken; the caller retries.
    const e = exception as { code?: unknown; driverError?: { code?: string } } | null;
    const pgCode = e?.driverError?.code ?? (typeof e?.code === 'string' ? e.code : undefined);
    if (pgCode === '55P03' || pgCode === '57014') {
      return this.simple('service_unavailable', 'the account is busy; retry shortly');
    }
    if (exception instanceof DomainError) {
      const body: ErrorBody = { error: { code: exception.code, message: exception.message } };
      if (exception.details.length > 0) body.error.details = exception.details;
      return [statusOf(exception.code), body];
    }
    // A path Fastify's router cannot decode (bad percent-encoding): a 400 naming the path.
    if (isFastifyError(exception, 'FST_ERR_BAD_URL')) {
      return invalidPath();
    }
    // An over-long path parameter (routerOptions.maxParamLength): no such resource.
    if (isFastifyError(exception, 'FST_ERR_MAX_PARAM_LENGTH')) {
      return [404, { error: { code: 'not_found', message: 'route not found' } }];
    }
    // BodyParsingInterceptor wraps body-parser errors (malformed JSON, bad encoding, too
    // large) in HttpExceptions whose cause carries body-parser's `type`.
    if (exception instanceof HttpException) {
      const cause = exception.cause as { type?: string } | undefined;
      if (cause instanceof SyntaxError || cause?.type === 'entity.parse.failed') {
        return this.simple('invalid_json', 'request body is not valid JSON');
      }
      if (exception.getStatus() === 413)
        return this.simple('payload_too_large', 'request body is too large');
      // Other framework 400s: a path that cannot be decoded, a body in an encoding or charset
      // we do not read. Name what was wrong, as every 400 does.
      if (exception.getStatus() === 400 || exception.getStatus() === 415) {
        const field =
          cause instanceof URIError
            ? 'path'
            : cause?.type === 'encoding.unsupported' || cause?.type === 'charset.unsupported'
              ? 'Content-Type'
              : 'body';
        const message =
          cause instanceof URIError ? 'the path is not validly percent-encoded' : exception.message;
        return [
          400,
          {
            error: {
              code: 'validation_failed',
              message: `${field}: ${message}`,
              details: [{ field, message }],
            },
          },
        ];
      }
      const status = exception.getStatus();
      const code = codeForStatus(status);
      const message = status === 404 ? 'route not found' : exception.message;
      return [status, { error: { code, message } }];
    }
    return [500, { error: { code: 'internal_error', message: 'internal error' } }];
  }

  private simple(code: ErrorCode, message: string): [number, ErrorBody] {
    return [statusOf(code), { error: { code, message } }];
  }
}

function isFastifyError(e: unknown, code: string): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === code;
}

function invalidPath(): [number, ErrorBody] {
  const message = 'the path is not validly percent-encoded';
  return [
    400,
    {
      error: {
        code: 'validation_failed',
        message: `path: ${message}`,
        details: [{ field: 'path', message }],
      },
    },
  ];
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'validation_failed';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 429:
      return 'rate_limited';
    default:
      return status >= 500 ? 'internal_error' : 'error';
  }
}

function dedupe(details: ErrorDetail[]): ErrorDetail[] {
  const seen = new Set<string>();
  return details.filter((d) => {
    const k = `${d.field}\u0000${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
