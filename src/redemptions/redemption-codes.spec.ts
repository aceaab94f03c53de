import { describe, expect, it } from '@jest/globals';
import { CODE_BITS, codeHash, generateCode, normalizeCode } from './redemption-codes.js';

describe('generateCode', () => {
  it('makes codes of at least 80 random bits, five groups of four base32 characters', () => {
    expect(CODE_BITS).toBeGreaterThanOrEqual(80);
    const codes = Array.from({ length: 2000 }, generateCode);
    for (const c of codes) expect(c).toMatch(/^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}$/);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('uses every character of the alphabet', () => {
    const seen = new Set(Array.from({ length: 500 }, generateCode).join('').replace(/-/g, ''));
    expect(seen.size).toBe(32);
  });
});

describe('normalizeCode', () => {
  const code = '7K2M-9QXD-4HVR-T0BW-E5NJ';
  it.each([
    [code, '7K2M9QXD4HVRT0BWE5NJ'],
    ['7k2m-9qxd-4hvr-t0bw-e5nj', '7K2M9QXD4HVRT0BWE5NJ'],
    [' 7K2M 9QXD 4HVR T0BW E5NJ ', '7K2M9QXD4HVRT0BWE5NJ'],
    ['7K2M9QXD4HVRTOBWE5NJ', '7K2M9QXD4HVRT0BWE5NJ'], // O read as 0
    ['IK2M9QXD4HVRT0BWE5NL', '1K2M9QXD4HVRT0BWE5N1'], // I and L read as 1
  ])('reads %p as %p', (input, canonical) => {
    expect(normalizeCode(input)).toBe(canonical);
  });

  it.each([
    '',
    'x',
    '7K2M-9QXD-4HVR-T0BW',
    `${code}-AAAA`,
    '7K2M-9QXD-4HVR-T0BW-E5NU',
    "' OR 1=1 --",
  ])('refuses %p', (input) => {
    expect(normalizeCode(input)).toBeNull();
  });

  it('hashes the canonical form, so every spelling of a code has one hash', () => {
    const a = normalizeCode(code);
    const b = normalizeCode(code.toLowerCase().replace(/-/g, ' '));
    expect(a).not.toBeNull();
    expect(codeHash(a ?? '')).toBe(codeHash(b ?? ''));
    expect(codeHash(a ?? '')).toMatch(/^[0-9a-f]{64}$/);
    expect(codeHash(a ?? '')).not.toContain(a);
  });
});
