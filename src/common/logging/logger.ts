import { LoggerService } from '@nestjs/common';
import { pino, Logger as Pino } from 'pino';
import { pinoHttp } from 'pino-http';
import type { RequestHandler } from 'express';
import { currentRequest } from '../http/request-context.js';

/** Header values that are secrets: never written to a log line. */
export const REDACT = [
  'req.headers.authorization',
  'req.headers["stripe-signature"]',
  'req.headers["idempotency-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/** How long a written line may wait in the buffer before it reaches stdout. */
const FLUSH_MS = 200;

/**
 * Structured logs on stdout, buffered: lines go out in batches (every 4 KiB, every 200 ms and
 * at exit) instead of one write system call per request line.
 */
export function createPino(level: string): Pino {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => dest.flush(), FLUSH_MS).unref();
  process.on('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // stdout already gone: nothing left to write to
    }
  });
  return pino(
    {
      level,
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { service: 'image-billing' },
    },
    dest,
  );
}

/** Request logs: method, path, status, time; no bodies (they carry keys and tokens). */
export function httpLogger(logger: Pino): RequestHandler {
  return pinoHttp({
    logger,
    quietReqLogger: true,
    // The id requestContext took or made: the same one the response's X-Request-Id carries.
    genReqId: (req) => (req as { id?: string }).id ?? currentRequest()?.requestId ?? 'unknown',
    customLogLevel: (_req, res, err) =>
      err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    serializers: {
      req: (req: { method: string; url: string; id: unknown }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}

/** Fields of a log line written while a request is served: its id. */
const withRequest = (fields: Record<string, unknown>): Record<string, unknown> => {
  const req = currentRequest();
  return req ? { reqId: req.requestId, ...fields } : fields;
};

/** Nest's own logs (boot, errors) through the same structured logger, naming their request. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Pino) {}
  log(message: unknown, context?: string): void {
    this.logger.info(withRequest({ context }), String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error(withRequest({ context, trace }), String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn(withRequest({ context }), String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug(withRequest({ context }), String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace(withRequest({ context }), String(message));
  }
}
