import { randomBytes } from 'node:crypto';
import { hashSecret } from '../auth/secrets.js';

/**
 * Redemption codes: 20 characters of Crockford's base32 (no I, L, O or U, so nothing reads
 * as another character), 100 random bits, shown as five groups of four
 * (`7K2M-9QXD-4HVR-T0BW-E5NJ`). Pure functions: no I/O but the random source.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const CODE_LENGTH = 20;
/** Bits of randomness in a code: 5 per character. */
export const CODE_BITS = CODE_LENGTH * 5;

const CANONICAL = /^[0-9A-HJKMNP-TV-Z]{20}$/;

/** A fresh code, grouped for reading. Each byte gives one character: 256 is a multiple of 32, so no bias. */
export function generateCode(): string {
  const bytes = randomBytes(CODE_LENGTH);
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) {
    code += ALPHABET[bytes[i] & 31];
    if (i % 4 === 3 && i < CODE_LENGTH - 1) code += '-';
  }
  return code;
}

/**
 * The canonical form of what a customer typed: case, spaces and dashes do not matter, and
 * the letters Crockford's base32 reads as digits (I and L as 1, O as 0) are read so. Null when
 * it cannot be a code (such input still counts as a failed attempt).
 */
export function normalizeCode(input: string): string | null {
  const canonical = input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/[IL]/g, '1')
    .replace(/O/g, '0');
  return CANONICAL.test(canonical) ? canonical : null;
}

/**
 * What is stored of a code: the SHA-256 of its canonical form. 100 random bits make a fast
 * hash enough (as for API keys, see auth/secrets.ts): the table is useless to whoever reads it.
 */
export function codeHash(canonical: string): string {
  return hashSecret(canonical);
}
