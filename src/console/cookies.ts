/** The console's session cookie. Path /v1: only API calls carry it, never the static pages. */
export const SESSION_COOKIE = 'console_session';
export const SESSION_COOKIE_PATH = '/v1';

/** The value of cookie `name` in a Cookie header, or null (first one wins, as browsers send). */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
      value = value.slice(1, -1);
    return value;
  }
  return null;
}

export interface SessionCookieOptions {
  secure: boolean;
  /** Seconds; 0 clears the cookie. */
  maxAgeSeconds: number;
}

/** A Set-Cookie value: HttpOnly (no script reads it), SameSite=Lax, Secure behind https. */
export function sessionCookie(token: string, opts: SessionCookieOptions): string {
  const parts = [
    `${SESSION_COOKIE}=${token}`,
    `Path=${SESSION_COOKIE_PATH}`,
    `Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`,
    'HttpOnly',
    'SameSite=Lax',
  ];
  if (opts.maxAgeSeconds <= 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}

export const clearedSessionCookie = (secure: boolean): string =>
  sessionCookie('', { secure, maxAgeSeconds: 0 });
