import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import helmet from 'helmet';

/** A request as Fastify identifies it: `req.id` is the id its log lines name (see requestId). */
export type IdentifiedRequest = FastifyRequest;

// A caller's id is kept when it is short and plain, so it cannot forge log lines.
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// `/v1` and below, in any letter case, as the router matches paths.
const UNDER_V1 = /^\/v1(?:[/?]|$)/i;

/**
 * Fastify's `genReqId`: X-Request-Id from the request when it sends a plain one, else a new
 * UUID. Fastify keeps it on the request (`req.id`) for the request's log lines: the access
 * line and any error line. Carried on the request, not in an AsyncLocalStorage: on Node 20
 * that turns on promise hooks for every promise the process makes, which cost about 70 µs a
 * request (see the README's Performance section).
 */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && ACCEPTABLE_ID.test(given) ? given : randomUUID();
}

/**
 * The usual security headers (nosniff, X-Frame-Options DENY, Referrer-Policy, HSTS...), built
 * once. No CSP here: /docs runs Swagger UI's inline scripts; the console's pages set their own.
 * (@fastify/helmet would build helmet's middleware again on every request.)
 */
const securityHeaders = helmet({
  contentSecurityPolicy: false,
  crossOriginEmbedderPolicy: false,
  frameguard: { action: 'deny' },
});
const noop = (): void => undefined;

/**
 * The headers every answer carries whatever answers it: helmet's, its request id, and on /v1
 * (balances, new keys) `Cache-Control: no-store`, so no browser or proxy stores them.
 */
export function setRequestHeaders(req: FastifyRequest, reply: FastifyReply): void {
  // helmet writes to the Node response; Fastify sends those headers with its own.
  securityHeaders(req.raw, reply.raw, noop);
  reply.header('X-Request-Id', req.id);
  if (UNDER_V1.test(req.url)) reply.header('Cache-Control', 'no-store');
}

/** The onRequest hook of setRequestHeaders. */
export function requestContext(
  req: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  setRequestHeaders(req, reply);
  done();
}
