import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsInt,
  IsISO8601,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { MODEL_NAME } from '../../catalog/dto/price.dto.js';
import type { Rule, Shape } from '../../common/http/fast-check.js';

/** Largest token count accepted per field: far above any real request, far below 2^53. */
export const MAX_TOKENS = 1_000_000_000_000;

export class InputTokensDetailsDto {
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(MAX_TOKENS) textTokens?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(MAX_TOKENS) imageTokens?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(MAX_TOKENS) cachedTokens?: number;
}

export class OutputTokensDetailsDto {
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(MAX_TOKENS) textTokens?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(MAX_TOKENS) imageTokens?: number;
}

export class UsageDto {
  @ApiProperty({ example: 89 }) @IsInt() @Min(0) @Max(MAX_TOKENS) inputTokens!: number;
  @ApiProperty({ example: 1145 }) @IsInt() @Min(0) @Max(MAX_TOKENS) outputTokens!: number;

  @ApiPropertyOptional({ type: InputTokensDetailsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => InputTokensDetailsDto)
  inputTokensDetails?: InputTokensDetailsDto;

  @ApiPropertyOptional({ type: OutputTokensDetailsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => OutputTokensDetailsDto)
  outputTokensDetails?: OutputTokensDetailsDto;
}

export class UsageEventDto {
  @ApiProperty({
    example: 'req_01J...',
    description: 'Unique per gateway request: the idempotency key',
  })
  @IsString()
  @Matches(/^[\x21-\x7e]{1,200}$/, { message: 'requestId must be 1 to 200 printable characters' })
  requestId!: string;

  @ApiProperty({ description: 'The API token (id) the request was made with' })
  @IsUUID('all', { message: 'tokenId must be a token id (uuid)' })
  tokenId!: string;

  @ApiProperty({ example: 'gpt-image-2' })
  @IsString()
  @IsNotEmpty()
  @Matches(MODEL_NAME, { message: 'model must be a model name' })
  model!: string;

  @ApiProperty({ example: 200, description: 'Upstream HTTP status' })
  @IsInt()
  @Min(100)
  @Max(599)
  statusCode!: number;

  @ApiPropertyOptional({ example: 'moderation_blocked' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  errorCode?: string;

  @ApiPropertyOptional() @IsOptional() @IsBoolean() moderated?: boolean;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() timedOut?: boolean;

  @ApiPropertyOptional({ type: UsageDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => UsageDto)
  usage?: UsageDto;

  @ApiPropertyOptional({ example: 1, description: 'Images returned (default 1)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10000)
  images?: number;

  @ApiPropertyOptional({ example: 0, description: 'Streamed partial images' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10000)
  partialImages?: number;

  @ApiPropertyOptional({ example: '1024x1024' })
  @IsOptional()
  @IsString()
  @MaxLength(32)
  size?: string;
  @ApiPropertyOptional({ example: 'high' })
  @IsOptional()
  @IsString()
  @MaxLength(32)
  quality?: string;

  @ApiPropertyOptional({ description: 'ISO-8601; default: when received' })
  @IsOptional()
  @IsISO8601({ strict: true })
  occurredAt?: string;
}

export class UsageBatchDto {
  @ApiProperty({
    type: [UsageEventDto],
    minItems: 1,
    maxItems: 1000,
    description: 'Each event is validated on its own',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  events!: unknown[];
}

export class BreakdownLineDto {
  @ApiProperty({ example: 'output_image_tokens' }) item!: string;
  @ApiProperty({ example: '1145' }) quantity!: string;
  @ApiProperty({ example: '30' }) unitPrice!: string;
  @ApiProperty({ enum: ['per_1m_tokens', 'per_request', 'per_image'] }) unit!: string;
  @ApiProperty({ example: '0.03435', description: 'Before the group ratio' }) amount!: string;
}

export class UsageRecordDto {
  @ApiProperty() requestId!: string;
  @ApiProperty() tokenId!: string;
  @ApiProperty() model!: string;
  @ApiProperty({
    enum: ['charged', 'skipped', 'review', 'voided'],
    description:
      "review: the charge exceeded the price version's reviewAbove and waits for an admin; nothing is booked " +
      'unless it is approved (then charged); voided: refused, never charged',
  })
  outcome!: 'charged' | 'skipped' | 'review' | 'voided';
  @ApiProperty({
    type: String,
    nullable: true,
    enum: ['moderated', 'upstream_error', 'timeout', 'no_output', 'above_review_limit'],
  })
  reason!: string | null;
  @ApiProperty({
    example: '0.0420744',
    description: 'What was booked: "0" for skipped, review and voided',
  })
  charge!: string;
  @ApiProperty({ example: 'image2Enterprise' }) group!: string;
  @ApiProperty({ example: '1.2' }) ratio!: string;
  @ApiProperty({ example: 1 }) priceVersion!: number;
  @ApiProperty({ type: [BreakdownLineDto] }) breakdown!: BreakdownLineDto[];
  @ApiProperty() occurredAt!: string;
  @ApiProperty() recordedAt!: string;
}

export class IngestResponseDto extends UsageRecordDto {
  @ApiProperty({
    description: 'true when this requestId was already recorded: nothing more was charged',
  })
  duplicate!: boolean;
}

/**
 * A replay of a request whose month retention dropped: the register still knows it was
 * recorded (and with this body), when, how it ended and what it charged; the rest of the
 * event went with its month.
 */
export class ArchivedIngestResponseDto {
  @ApiProperty() requestId!: string;
  @ApiProperty() tokenId!: string;
  @ApiProperty() model!: string;
  @ApiProperty({ enum: ['charged', 'skipped', 'review', 'voided'] }) outcome!: string;
  @ApiProperty({ description: 'What was booked: "0" for skipped, review and voided' })
  charge!: string;
  @ApiProperty() recordedAt!: string;
  @ApiProperty({ enum: [true] }) duplicate!: true;
  @ApiProperty({ enum: [true], description: "the event's month was dropped by retention" })
  archived!: true;
}

export class BatchResultDto {
  @ApiProperty({ type: String, nullable: true }) requestId!: string | null;
  @ApiProperty({ enum: ['charged', 'skipped', 'review', 'duplicate', 'rejected'] })
  outcome!: string;
  @ApiPropertyOptional({
    description: 'charged: this charge; duplicate: what the first delivery was charged',
  })
  charge?: string;
  @ApiPropertyOptional() reason?: string;
  @ApiPropertyOptional({ description: 'rejected: { code, message, details? }' })
  error?: { code: string; message: string; details?: { field: string; message: string }[] };
}

export class BatchResponseDto {
  @ApiProperty({ type: [BatchResultDto] }) results!: BatchResultDto[];
}

const tokens: Rule = { kind: 'int', min: 0, max: MAX_TOKENS };
const optional = (rule: Rule) => ({ rule, optional: true });

/** UsageEventDto's rules for the hot path's fast check (common/http/fast-check.ts). */
export const USAGE_EVENT_SHAPE: Shape = {
  requestId: { rule: { kind: 'string', pattern: /^[\x21-\x7e]{1,200}$/ } },
  tokenId: {
    rule: {
      kind: 'string',
      pattern: /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i,
    },
  },
  model: { rule: { kind: 'string', pattern: MODEL_NAME } },
  statusCode: { rule: { kind: 'int', min: 100, max: 599 } },
  errorCode: optional({ kind: 'string', maxLength: 100 }),
  moderated: optional({ kind: 'bool' }),
  timedOut: optional({ kind: 'bool' }),
  usage: optional({
    kind: 'object',
    shape: {
      inputTokens: { rule: tokens },
      outputTokens: { rule: tokens },
      inputTokensDetails: optional({
        kind: 'object',
        shape: {
          textTokens: optional(tokens),
          imageTokens: optional(tokens),
          cachedTokens: optional(tokens),
        },
      }),
      outputTokensDetails: optional({
        kind: 'object',
        shape: { textTokens: optional(tokens), imageTokens: optional(tokens) },
      }),
    },
  }),
  images: optional({ kind: 'int', min: 0, max: 10000 }),
  partialImages: optional({ kind: 'int', min: 0, max: 10000 }),
  size: optional({ kind: 'string', maxLength: 32 }),
  quality: optional({ kind: 'string', maxLength: 32 }),
  occurredAt: optional({ kind: 'utc-time' }),
};
