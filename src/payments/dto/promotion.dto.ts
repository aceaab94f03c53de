import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsBoolean,
  IsISO8601,
  IsNotEmpty,
  IsOptional,
  IsString,
  MaxLength,
  registerDecorator,
  ValidateIf,
  ValidationOptions,
} from 'class-validator';
import { IsDecimalString } from '../../common/http/validation.js';

export const RATE = { min: '0', minExclusive: true, max: '1', maxScale: 10 };
export const MIN_CREDIT = { min: '0', max: '1000000000', maxScale: 10 };

/** `endsAt` later than a sibling start time, when both are given (nulls are checked elsewhere). */
function IsAfter(startField: string, validationOptions?: ValidationOptions) {
  return function (object: object, propertyName: string): void {
    registerDecorator({
      name: 'isAfter',
      target: object.constructor,
      propertyName,
      options: validationOptions,
      validator: {
        validate(value: unknown, args): boolean {
          const start = (args?.object as Record<string, unknown>)[startField];
          if (typeof value !== 'string' || typeof start !== 'string') return true;
          const [s, e] = [Date.parse(start), Date.parse(value)];
          return Number.isNaN(s) || Number.isNaN(e) || e > s;
        },
        defaultMessage(): string {
          return `${propertyName} must be later than ${startField}`;
        },
      },
    });
  };
}

export class CreatePromotionDto {
  @ApiProperty({ example: '15% off top-ups', maxLength: 200 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name!: string;

  @ApiProperty({
    example: '0.85',
    description: 'What a top-up costs per unit of credit: decimal string, > 0 and <= 1',
  })
  @IsDecimalString(RATE)
  rate!: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'ISO-8601; null or omitted: already started',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsISO8601({ strict: true })
  startsAt?: string | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'ISO-8601, later than startsAt; null or omitted: never ends',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsISO8601({ strict: true })
  @IsAfter('startsAt')
  endsAt?: string | null;

  @ApiPropertyOptional({
    example: '0.00',
    default: '0',
    description: 'Smallest top-up credit (USD) the promotion applies to',
  })
  @IsOptional()
  @IsDecimalString(MIN_CREDIT)
  minCredit?: string;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  active?: boolean;
}

/** Omitted fields stay; `startsAt`/`endsAt` may be set to null. Other fields refuse null. */
export class UpdatePromotionDto {
  @ApiPropertyOptional({ maxLength: 200 })
  @ValidateIf((_, v) => v !== undefined)
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name?: string;

  @ApiPropertyOptional({ example: '0.8' })
  @ValidateIf((_, v) => v !== undefined)
  @IsDecimalString(RATE)
  rate?: string;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsISO8601({ strict: true })
  startsAt?: string | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Must stay later than startsAt (the stored one if not patched)',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsISO8601({ strict: true })
  @IsAfter('startsAt')
  endsAt?: string | null;

  @ApiPropertyOptional({ example: '50.00' })
  @ValidateIf((_, v) => v !== undefined)
  @IsDecimalString(MIN_CREDIT)
  minCredit?: string;

  @ApiPropertyOptional()
  @ValidateIf((_, v) => v !== undefined)
  @IsBoolean()
  active?: boolean;
}

export class PromotionDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: '0.85' }) rate!: string;
  @ApiProperty({ type: String, nullable: true }) startsAt!: string | null;
  @ApiProperty({ type: String, nullable: true }) endsAt!: string | null;
  @ApiProperty({ example: '0.00' }) minCredit!: string;
  @ApiProperty() active!: boolean;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
}

export class PromotionPageDto {
  @ApiProperty({ type: [PromotionDto] }) data!: PromotionDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

/** The promotion a price was computed with, as kept on the top-up (or shown in a quote). */
export class PromotionRefDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: '0.85' }) rate!: string;
}
