import { ValidationPipe } from '@nestjs/common';
import { createValidationPipe } from './validation.js';

/**
 * A conservative, allocation-free check for the hot routes' bodies (usage events, authorize).
 * It may only say "valid" for a body the class-validator DTO accepts unchanged; anything it
 * cannot vouch for (an unknown key, a null, an odd string, a time it does not parse) goes to
 * the class-validator pipe, which gives the exact field-named 400 it always gave. So answers
 * are the same either way; only the common, valid body skips class-transformer and
 * class-validator (src/common/http/fast-check.spec.ts checks that on a mutated corpus).
 */
export type Rule =
  | { kind: 'int'; min: number; max: number }
  /** A string of at most `maxLength` UTF-16 units (validator counts fewer, never more). */
  | { kind: 'string'; maxLength?: number; pattern?: RegExp }
  | { kind: 'bool' }
  /** The plain UTC form 2026-12-02T01:02:03(.123)Z of a real calendar time. */
  | { kind: 'utc-time' }
  | { kind: 'object'; shape: Shape };

export type Shape = Record<string, { rule: Rule; optional?: boolean }>;

const UTC_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?Z$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  // Object.prototype of any realm (or none): JSON.parse's objects, never a class instance.
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function utcTime(s: string): boolean {
  const m = UTC_TIME.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  if (y < 1000 || h > 23 || mi > 59 || se > 59) return false;
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

function ruleHolds(value: unknown, rule: Rule): boolean {
  switch (rule.kind) {
    case 'int':
      return (
        typeof value === 'number' &&
        Number.isInteger(value) &&
        value >= rule.min &&
        value <= rule.max
      );
    case 'string':
      return (
        typeof value === 'string' &&
        (rule.maxLength === undefined || value.length <= rule.maxLength) &&
        (rule.pattern === undefined || rule.pattern.test(value))
      );
    case 'bool':
      return typeof value === 'boolean';
    case 'utc-time':
      return typeof value === 'string' && utcTime(value);
    case 'object':
      return passes(value, rule.shape);
  }
}

/** True only when `value` is a plain object every key of which `shape` names and allows. */
export function passes(value: unknown, shape: Shape): boolean {
  if (!isPlainObject(value)) return false;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(shape, key)) return false;
  }
  for (const key in shape) {
    const field = shape[key];
    const v = value[key];
    if (v === undefined) {
      if (!field.optional) return false;
    } else if (!ruleHolds(v, field.rule)) return false;
  }
  return true;
}

const pipe: ValidationPipe = createValidationPipe();

/**
 * The body as `metatype`: as it came when `shape` vouches for it, else through the
 * class-validator pipe (which throws the field-named 400, or transforms an odd-but-valid body).
 */
export async function checkBody<T>(raw: unknown, shape: Shape, metatype: new () => T): Promise<T> {
  if (passes(raw, shape)) return raw as T;
  return (await pipe.transform(raw, { type: 'body', metatype, data: '' })) as T;
}
