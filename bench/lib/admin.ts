import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpClient } from './load.js';

/** An admin API call: JSON in and out, anything but 2xx thrown with its status and body. */
export type AdminApi = <T = { id: string }>(
  method: string,
  path: string,
  body?: unknown,
  headers?: OutgoingHttpHeaders,
) => Promise<T>;

export function adminApi(client: HttpClient, adminKey: string): AdminApi {
  return async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: OutgoingHttpHeaders = {},
  ): Promise<T> => {
    const s = body === undefined ? undefined : JSON.stringify(body);
    const r = await client.request(
      method,
      path,
      {
        authorization: `Bearer ${adminKey}`,
        ...(s === undefined
          ? {}
          : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) }),
        ...headers,
      },
      s,
    );
    if (r.status < 200 || r.status >= 300)
      throw new Error(`${method} ${path} → ${r.status}: ${r.body.slice(0, 300)}`);
    return JSON.parse(r.body) as T;
  };
}
