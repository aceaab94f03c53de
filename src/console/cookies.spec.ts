import { describe, expect, it } from '@jest/globals';
import { clearedSessionCookie, readCookie, sessionCookie } from './cookies.js';

describe('session cookies', () => {
  it.each([
    [undefined, null],
    ['', null],
    ['other=1', null],
    ['console_session=abc', 'abc'],
    ['a=1; console_session=abc; b=2', 'abc'],
    ['console_session="abc"', 'abc'],
    ['console_session=first; console_session=second', 'first'],
    ['xconsole_session=no', null],
  ])('reads %p as %p', (header, expected) => {
    expect(readCookie(header, 'console_session')).toBe(expected);
  });

  it('is HttpOnly and SameSite=Lax, Secure only behind https', () => {
    const plain = sessionCookie('tok', { secure: false, maxAgeSeconds: 60 });
    expect(plain).toBe('console_session=tok; Path=/v1; Max-Age=60; HttpOnly; SameSite=Lax');
    expect(sessionCookie('tok', { secure: true, maxAgeSeconds: 60 })).toMatch(/; Secure$/);
  });

  it('clears with an empty value that expired long ago', () => {
    expect(clearedSessionCookie(false)).toMatch(
      /^console_session=; Path=\/v1; Max-Age=0; HttpOnly; SameSite=Lax; Expires=Thu, 01 Jan 1970/,
    );
  });
});
