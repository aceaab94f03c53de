import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/** A request as requestContext leaves it: with the id its log lines name. */
export type IdentifiedRequest = Request & { id?: string };

// A caller's id is kept when it is short and plain, so it cannot forge log lines.
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Takes X-Request-Id from the request when it sends a plain one, else makes one; answers it
 * on the response and keeps it on the request (`req.id`) for the request's log lines: the
 * access line and any error line. Carried on the request, not in an AsyncLocalStorage: on
 * Node 20 that turns on promise hooks for every promise the process makes, which cost about
 * 70 µs a request (see the README's Performance section).
 */
export function requestContext(req: Request, res: Response, next: NextFunction): void {
  const given = req.headers['x-request-id'];
  const requestId = typeof given === 'string' && ACCEPTABLE_ID.test(given) ? given : randomUUID();
  (req as IdentifiedRequest).id = requestId;
  res.setHeader('X-Request-Id', requestId);
  next();
}
