import {
  CallHandler,
  ExecutionContext,
  HttpException,
  Injectable,
  NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import bodyParser from 'body-parser';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { from, Observable, switchMap } from 'rxjs';

/** Largest JSON body on every route but those marked with @BodyLimit. */
export const DEFAULT_BODY_LIMIT = '64kb';
/** A 1,000-event batch fits with room to spare. */
export const BATCH_BODY_LIMIT = '2mb';

const BODY_LIMIT_KEY = 'bodyLimit';
/** A route that takes a larger body than DEFAULT_BODY_LIMIT. */
export const BodyLimit = (limit: string) => SetMetadata(BODY_LIMIT_KEY, limit);

/** What the interceptor leaves on a request: the exact bytes of a JSON body it parsed. */
export type RawRequest = FastifyRequest & { rawBody?: Buffer };
type ParsedMessage = IncomingMessage & { body?: unknown; rawBody?: Buffer };
type Parser = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Fastify parses a body before the route's handler runs, i.e. before Nest's guards. Every
 * content type goes to one parser here that reads nothing: the payload stays unread in the
 * socket until BodyParsingInterceptor reads it, after the guards and rate limits, with the
 * route's limit (a request refused unread is answered with `Connection: close`, see the
 * exception filter, and Node discards what is left of it).
 */
export function deferBodyParsing(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
}

/**
 * Parses JSON bodies after the guards, so a request without a valid key is answered 401
 * before a byte of its body is read or parsed: an unauthenticated flood of large bodies costs
 * the service almost nothing. Keeps the exact bytes on `rawBody` (the Stripe webhook verifies
 * its signature over them). The parser is body-parser's, run on the Node request Fastify left
 * unread (deferBodyParsing): strict JSON.parse (no number is rounded: money arrives as
 * strings and the DTOs refuse numbers), the charsets and Content-Encodings it knows, the limit
 * checked against Content-Length before reading. Its errors keep body-parser's `type` as the
 * cause, which the exception filter turns into invalid_json, payload_too_large or a
 * field-named 400.
 */
@Injectable()
export class BodyParsingInterceptor implements NestInterceptor {
  private readonly parsers = new Map<string, Parser>();

  constructor(private readonly reflector: Reflector) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const http = ctx.switchToHttp();
    const req = http.getRequest<RawRequest>();
    if (req.body !== undefined || !BODY_METHODS.has(req.method)) return next.handle();
    const limit =
      this.reflector.getAllAndOverride<string | undefined>(BODY_LIMIT_KEY, [
        ctx.getHandler(),
        ctx.getClass(),
      ]) ?? DEFAULT_BODY_LIMIT;
    const parse = this.parser(limit);
    const raw = req.raw as ParsedMessage;
    const res = http.getResponse<FastifyReply>().raw;
    return from(
      new Promise<void>((resolve, reject) =>
        parse(raw, res, (err?: unknown) => {
          if (err) {
            reject(toHttp(err));
            return;
          }
          req.body = raw.body;
          req.rawBody = raw.rawBody;
          resolve();
        }),
      ),
    ).pipe(switchMap(() => next.handle()));
  }

  private parser(limit: string): Parser {
    let p = this.parsers.get(limit);
    if (!p) {
      p = bodyParser.json({
        limit,
        verify: (req, _res, buf) => {
          (req as ParsedMessage).rawBody = buf;
        },
      }) as Parser;
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
