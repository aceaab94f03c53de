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
}

/**
 * A decimal string ("0.035062"), never a JSON number, checked with Decimal math only.
 */
export function IsDecimalString(opts: DecimalStringOptions = {}, validationOptions?: ValidationOptions) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'isDecimalString',
      target: object.constructor,
      propertyName,
      options: validationOptions,
      validator: {
        validate(value: unknown): boolean {
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
          if (opts.min !== undefined) parts.push(`${opts.minExclusive ? 'greater than' : 'at least'} ${opts.min}`);
          if (opts.max !== undefined) parts.push(`at most ${opts.max}`);
          if (opts.maxScale !== undefined) parts.push(`with at most ${opts.maxScale} decimal places`);
          return `${propertyName} ${parts.join(', ')}`;
        },
      },
    });
  };
}
