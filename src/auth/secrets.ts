import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys are 256 random bits, so a fast hash is enough: SHA-256 makes the stored value useless
 * to whoever reads the table, and lookups by hash never compare the secret itself.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateSecret(prefix: 'ck_' | 'sk-' | 'admin_' | 'gw_'): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** What we show of a key after creation: enough to recognise it, never enough to use it. */
export function keyPrefix(secret: string): string {
  return secret.slice(0, 10);
}

/** Constant-time check of a presented secret's SHA-256 against a list of configured ones. */
export function matchesAny(presentedHash: Buffer, configuredHashes: Buffer[]): boolean {
  const h = presentedHash;
  let found = false;
  for (const c of configuredHashes) {
    // Compare with every key, not stopping at the first match, so timing says nothing.
    if (timingSafeEqual(h, c)) found = true;
  }
  return found;
}

export function hashForCompare(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}
