import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsInt,
  IsISO8601,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';
import { AuthorizeHoldDto } from '../../holds/dto/hold.dto.js';
import { IsDecimalString, IsNotPast } from '../../common/http/validation.js';
import { GROUP_NAME } from '../../groups/dto/group.dto.js';
import { MODEL_NAME } from '../../catalog/dto/price.dto.js';
import type { Shape } from '../../common/http/fast-check.js';

const SPEND_LIMIT = { min: '0', max: '1000000000', maxScale: 10 };

export class CreateTokenDto {
  @ApiProperty({ example: 'production' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name!: string;

  @ApiPropertyOptional({
    example: 'default',
    description: 'Group name; omitted: the default group',
  })
  @IsOptional()
  @IsString()
  @Matches(GROUP_NAME, { message: 'group must match ^[A-Za-z0-9_-]{1,64}$' })
  group?: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'ISO-8601, in the future; null: never',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsISO8601({ strict: true })
  @IsNotPast(0, { message: 'expiresAt must be in the future' })
  expiresAt?: string | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    example: '50.00',
    description: 'USD; null: unlimited',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsDecimalString(SPEND_LIMIT)
  spendLimit?: string | null;

  @ApiPropertyOptional({ type: [String], nullable: true, description: 'null: every priced model' })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsArray()
  @ArrayMaxSize(100)
  @ArrayUnique()
  @IsString({ each: true })
  @Matches(MODEL_NAME, { each: true, message: 'allowedModels entries must be model names' })
  allowedModels?: string[] | null;
}

export class UpdateTokenDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(GROUP_NAME, { message: 'group must match ^[A-Za-z0-9_-]{1,64}$' })
  group?: string;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsISO8601({ strict: true })
  @IsNotPast(0, { message: 'expiresAt must be in the future' })
  expiresAt?: string | null;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsDecimalString(SPEND_LIMIT)
  spendLimit?: string | null;

  @ApiPropertyOptional({ type: [String], nullable: true })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsArray()
  @ArrayMaxSize(100)
  @ArrayUnique()
  @IsString({ each: true })
  @Matches(MODEL_NAME, { each: true, message: 'allowedModels entries must be model names' })
  allowedModels?: string[] | null;
}

export class TokenDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() group!: string;
  @ApiProperty({ example: 'sk-AbC1234' }) keyPrefix!: string;
  @ApiProperty({ enum: ['active', 'revoked'] }) status!: 'active' | 'revoked';
  @ApiProperty({ type: String, nullable: true }) expiresAt!: string | null;
  @ApiProperty({ type: String, nullable: true }) spendLimit!: string | null;
  @ApiProperty({ example: '0.00' }) spent!: string;
  @ApiProperty({ example: '0.00', description: 'USD set aside by its active holds' }) held!: string;
  @ApiProperty({ type: [String], nullable: true }) allowedModels!: string[] | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ type: String, nullable: true }) lastUsedAt!: string | null;
}

export class TokenWithKeyDto extends TokenDto {
  @ApiProperty({ description: 'The API token (sk-...): shown only in this response' }) key!: string;
}

export class TokenPageDto {
  @ApiProperty({ type: [TokenDto] }) data!: TokenDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class AuthorizeDto {
  @ApiProperty({ example: 'sk-...' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(512)
  key!: string;

  @ApiProperty({ example: 'gpt-image-2' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(128)
  model!: string;

  @ApiPropertyOptional({
    example: 'req_01J...',
    description:
      'The request id its usage event will carry. With it, authorize holds the likely price; without it, ' +
      'it only checks (hold: null)',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[\x21-\x7e]{1,200}$/, { message: 'requestId must be 1 to 200 printable characters' })
  requestId?: string;

  @ApiPropertyOptional({
    example: 1,
    minimum: 1,
    maximum: 100,
    description: 'Images asked for (default 1)',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  n?: number;

  @ApiPropertyOptional({ example: '1024x1024' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,32}$/, { message: 'size must be a size such as 1024x1024' })
  size?: string;

  @ApiPropertyOptional({ example: 'high' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,32}$/, { message: 'quality must be a quality such as high' })
  quality?: string;
}

export const DENY_REASONS = [
  'invalid_key',
  'revoked',
  'expired',
  'account_suspended',
  'insufficient_balance',
  'model_not_allowed',
  'model_not_priced',
  'spend_limit_reached',
  'request_settled',
] as const;
export type DenyReason = (typeof DENY_REASONS)[number];

export class AuthorizeResultDto {
  @ApiProperty() allowed!: boolean;
  @ApiPropertyOptional({ enum: DENY_REASONS }) reason?: DenyReason;
  @ApiPropertyOptional() tokenId?: string;
  @ApiPropertyOptional() accountId?: string;
  @ApiPropertyOptional() group?: string;
  @ApiPropertyOptional({ example: '1.2' }) ratio?: string;
  @ApiPropertyOptional({ example: '12.50' }) balance?: string;
  @ApiPropertyOptional({ example: '12.214', description: 'balance − held, after this hold' })
  available?: string;
  @ApiPropertyOptional({
    type: AuthorizeHoldDto,
    nullable: true,
    description: 'null: a check only',
  })
  hold?: AuthorizeHoldDto | null;
}

const SIZE_OR_QUALITY = /^[A-Za-z0-9_-]{1,32}$/;

/** AuthorizeDto's rules for the hot path's fast check (common/http/fast-check.ts). */
export const AUTHORIZE_SHAPE: Shape = {
  key: { rule: { kind: 'string', maxLength: 512, pattern: /^[\s\S]/ } },
  model: { rule: { kind: 'string', maxLength: 128, pattern: /^[\s\S]/ } },
  requestId: { rule: { kind: 'string', pattern: /^[\x21-\x7e]{1,200}$/ }, optional: true },
  n: { rule: { kind: 'int', min: 1, max: 100 }, optional: true },
  size: { rule: { kind: 'string', pattern: SIZE_OR_QUALITY }, optional: true },
  quality: { rule: { kind: 'string', pattern: SIZE_OR_QUALITY }, optional: true },
};
