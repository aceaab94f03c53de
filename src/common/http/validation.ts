import { ValidationError, ValidationPipe } from '@nestjs/common';
import { registerDecorator, ValidationOptions } from 'class-validator';
import { DomainError, ErrorDetail } from '../errors/domain-error.js';
import { isDecimalString, money } from '../money/money.js';

/** Flattens nested class-validator errors into one detail per failing field ("usage.inputTokens"). */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints) {
      for (const message of Object.values(e.constraints)) out.push({ field, message });
    }
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

export function validationError(details: ErrorDetail[]): DomainError {
  const fields = [...new Set(details.map((d) => d.field))];
  return new DomainError('validation_failed', `invalid fields: ${fields.join(', ')}`, details);
}

export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => validationError(flattenValidationErrors(errors)),
  });
}

export interface DecimalStringOptions {
  /** Smallest allowed value (inclusive unless minExclusive). */
  min?: string;
  minExclusive?: boolean;
  /** Largest allowed value (inclusive). */
  max?: string;
  /** Most digits after the point. */
  maxScale?: number;
  /** Accept undefined (for fields whose presence another validator decides). */
  allowUndefined?: boolean;
}

/**
 * A decimal string ("0.035062"), never a JSON number, checked with Decimal math only.
 */
export function IsDecimalString(
  opts: DecimalStringOptions = {},
  validationOptions?: ValidationOptions,
) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'isDecimalString',
      target: object.constructor,
      propertyName,
      options: validationOptions,
      validator: {
        validate(value: unknown): boolean {
          if (value === undefined && opts.allowUndefined) return true;
          if (!isDecimalString(value)) return false;
          const d = money(value);
          if (opts.maxScale !== undefined && d.decimalPlaces() > opts.maxScale) return false;
          if (opts.min !== undefined) {
            const cmp = d.comparedTo(money(opts.min));
            if (opts.minExclusive ? cmp <= 0 : cmp < 0) return false;
          }
          if (opts.max !== undefined && d.comparedTo(money(opts.max)) > 0) return false;
          return true;
        },
        defaultMessage(): string {
          const parts = ['must be a decimal string such as "1.25"'];
          if (opts.min !== undefined)
            parts.push(`${opts.minExclusive ? 'greater than' : 'at least'} ${opts.min}`);
          if (opts.max !== undefined) parts.push(`at most ${opts.max}`);
          if (opts.maxScale !== undefined)
            parts.push(`with at most ${opts.maxScale} decimal places`);
          return `${propertyName} ${parts.join(', ')}`;
        },
      },
    });
  };
}

/** A time (ISO-8601, already checked by @IsISO8601) later than now minus `toleranceMs`. */
export function IsNotPast(toleranceMs: number, validationOptions?: ValidationOptions) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'isNotPast',
      target: object.constructor,
      propertyName,
      options: validationOptions,
      validator: {
        validate(value: unknown): boolean {
          if (typeof value !== 'string') return true; // type errors are @IsISO8601's to report
          const at = Date.parse(value);
          return Number.isNaN(at) || at > Date.now() - toleranceMs;
        },
        defaultMessage(): string {
          return toleranceMs > 0
            ? `${propertyName} must be now or later`
            : `${propertyName} must be in the future`;
        },
      },
    });
  };
}

/**
 * A field that belongs to some values of a sibling discriminator (e.g. price fields per
 * billing mode): required when the discriminator is one of `values`, refused otherwise.
 * Put it without @IsOptional; the field's own format validators must tolerate undefined.
 */
export function BelongsTo(
  discriminator: string,
  values: readonly string[],
  known: readonly string[],
  validationOptions?: ValidationOptions,
) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'belongsTo',
      target: object.constructor,
      propertyName,
      options: validationOptions,
      validator: {
        validate(value: unknown, args): boolean {
          const d = (args?.object as Record<string, unknown>)[discriminator];
          if (typeof d !== 'string' || !known.includes(d)) return true; // the discriminator's own validator reports it
          return (value !== undefined) === values.includes(d);
        },
        defaultMessage(args): string {
          const d = String((args?.object as Record<string, unknown>)[discriminator]);
          return args?.value === undefined
            ? `${propertyName} is required when ${discriminator} is ${d}`
            : `${propertyName} does not apply when ${discriminator} is ${d}`;
        },
      },
    });
  };
}

/** Like BelongsTo, but the field may be omitted in the modes it belongs to. */
export function OnlyFor(
  discriminator: string,
  values: readonly string[],
  known: readonly string[],
) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'onlyFor',
      target: object.constructor,
      propertyName,
      validator: {
        validate(value: unknown, args): boolean {
          const d = (args?.object as Record<string, unknown>)[discriminator];
          if (typeof d !== 'string' || !known.includes(d)) return true;
          return value === undefined || values.includes(d);
        },
        defaultMessage(args): string {
          const d = String((args?.object as Record<string, unknown>)[discriminator]);
          return `${propertyName} does not apply when ${discriminator} is ${d}`;
        },
      },
    });
  };
}

/** An integer in [min, max]; undefined passes when `allowUndefined` (see @BelongsTo). */
export function IsIntInRange(min: number, max: number, opts: { allowUndefined?: boolean } = {}) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'isIntInRange',
      target: object.constructor,
      propertyName,
      validator: {
        validate(value: unknown): boolean {
          if (value === undefined && opts.allowUndefined) return true;
          return (
            typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
          );
        },
        defaultMessage(): string {
          return `${propertyName} must be an integer from ${min} to ${max}`;
        },
      },
    });
  };
}
