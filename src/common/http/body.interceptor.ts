import {
  CallHandler,
  ExecutionContext,
  HttpException,
  Injectable,
  NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { json } from 'express';
import type { Request, RequestHandler, Response } from 'express';
import { from, Observable, switchMap } from 'rxjs';

/** Largest JSON body on every route but those marked with @BodyLimit. */
export const DEFAULT_BODY_LIMIT = '64kb';
/** A 1,000-event batch fits with room to spare. */
export const BATCH_BODY_LIMIT = '2mb';

const BODY_LIMIT_KEY = 'bodyLimit';
/** A route that takes a larger body than DEFAULT_BODY_LIMIT. */
export const BodyLimit = (limit: string) => SetMetadata(BODY_LIMIT_KEY, limit);

type RawRequest = Request & { rawBody?: Buffer };

/**
 * Parses JSON bodies after the guards, so a request without a valid key is answered 401
 * before a byte of its body is read or parsed: an unauthenticated flood of large bodies costs
 * the service almost nothing. Keeps the exact bytes on `rawBody` (the Stripe webhook verifies
 * its signature over them). Parser errors keep body-parser's `type` as the cause, which the
 * exception filter turns into invalid_json, payload_too_large or a field-named 400.
 */
@Injectable()
export class BodyParsingInterceptor implements NestInterceptor {
  private readonly parsers = new Map<string, RequestHandler>();

  constructor(private readonly reflector: Reflector) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const http = ctx.switchToHttp();
    const req = http.getRequest<RawRequest>();
    if (req.body !== undefined || !['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) {
      return next.handle();
    }
    const limit =
      this.reflector.getAllAndOverride<string | undefined>(BODY_LIMIT_KEY, [
        ctx.getHandler(),
        ctx.getClass(),
      ]) ?? DEFAULT_BODY_LIMIT;
    const parse = this.parser(limit);
    const res = http.getResponse<Response>();
    return from(
      new Promise<void>((resolve, reject) =>
        parse(req, res, (err?: unknown) => (err ? reject(toHttp(err)) : resolve())),
      ),
    ).pipe(switchMap(() => next.handle()));
  }

  private parser(limit: string): RequestHandler {
    let p = this.parsers.get(limit);
    if (!p) {
      p = json({
        limit,
        verify: (req, _res, buf) => {
          (req as RawRequest).rawBody = buf;
        },
      });
      this.parsers.set(limit, p);
    }
    return p;
  }
}

function toHttp(err: unknown): HttpException {
  const e = err as { status?: number; statusCode?: number; message?: string };
  const status = e.status ?? e.statusCode ?? 400;
  return new HttpException(e.message ?? 'bad request body', status, { cause: err });
}
