import { randomBytes, scrypt, ScryptOptions, timingSafeEqual } from 'node:crypto';

/** Shortest password accepted. */
export const MIN_PASSWORD_LENGTH = 10;
/** Longest: keeps one hash cheap to compute whatever a client sends. */
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * scrypt with N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds per hash): slow enough to
 * make guessing a stolen hash expensive, fast enough for a sign-in. Parameters are stored with
 * each hash so they can be raised later without breaking old ones.
 */
const PARAMS = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_BYTES = 16;

function derive(password: string, salt: Buffer, p: { N: number; r: number; p: number }) {
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r };
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$<salt base64url>$<key base64url>`, with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, PARAMS);
  return [
    'scrypt',
    PARAMS.N,
    PARAMS.r,
    PARAMS.p,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

const FORMAT =
  /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{16,128})$/;

/**
 * Constant-time check of `password` against a stored hash. A malformed or missing hash is
 * checked against a dummy one, so an unknown email costs the same time as a wrong password.
 */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const m = stored === null ? null : FORMAT.exec(stored);
  const params = m
    ? { N: Number.parseInt(m[1], 10), r: Number.parseInt(m[2], 10), p: Number.parseInt(m[3], 10) }
    : PARAMS;
  const salt = m ? Buffer.from(m[4], 'base64url') : DUMMY_SALT;
  const expected = m ? Buffer.from(m[5], 'base64url') : DUMMY_KEY;
  const key = await derive(password, salt, params);
  const equal = key.length === expected.length && timingSafeEqual(key, expected);
  return m !== null && equal;
}

const DUMMY_SALT = randomBytes(SALT_BYTES);
const DUMMY_KEY = randomBytes(KEY_LENGTH);
