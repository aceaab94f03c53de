import { describe, expect, it } from '@jest/globals';
import { hashPassword, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('hashes with scrypt and a random salt, so one password gives different hashes', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(a).not.toEqual(b);
    expect(a).not.toContain('correct horse');
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse battery');
    await expect(verifyPassword('correct horse battery', h)).resolves.toBe(true);
    await expect(verifyPassword('correct horse batterY', h)).resolves.toBe(false);
    await expect(verifyPassword('', h)).resolves.toBe(false);
  });

  it.each([null, '', 'plain', 'scrypt$1$1$1$x$y'])(
    'refuses any password for a missing or malformed hash (%p)',
    async (stored) => {
      await expect(verifyPassword('correct horse battery', stored)).resolves.toBe(false);
    },
  );

  it('treats canonically equal Unicode spellings as the same password', async () => {
    const h = await hashPassword('caf\u00e9-password');
    await expect(verifyPassword('cafe\u0301-password', h)).resolves.toBe(true);
  });
});
