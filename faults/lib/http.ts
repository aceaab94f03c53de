import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpClient } from '../../bench/lib/load.js';

/**
 * Node's agent closes an idle socket before the server's announced `Keep-Alive: timeout=N`
 * (1 s early) only when the agent has an idle timeout of its own; without one (as in
 * bench/lib/load.ts) it reuses sockets the server is closing, and now and then a request
 * meets "socket hang up" / ECONNRESET. A careful gateway honours the hint; so do we.
 */
export function honourKeepAliveHint(c: HttpClient): HttpClient {
  (c.agent as unknown as { options: { timeout?: number } }).options.timeout = 60_000;
  return c;
}

// ---- API helpers -------------------------------------------------------------------------------

export function jsonHeaders(key: string, body?: string): OutgoingHttpHeaders {
  return body === undefined
    ? { authorization: `Bearer ${key}` }
    : {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      };
}

export async function callJson<T>(
  client: HttpClient,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: OutgoingHttpHeaders = {},
): Promise<T> {
  const s = body === undefined ? undefined : JSON.stringify(body);
  const r = await client.request(method, path, { ...jsonHeaders(key, s), ...extraHeaders }, s);
  if (r.status < 200 || r.status >= 300)
    throw new Error(`${method} ${path} → ${r.status}: ${r.body.slice(0, 300)}`);
  return JSON.parse(r.body) as T;
}
