import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, Matches } from 'class-validator';
import { MODEL_NAME } from '../../catalog/dto/price.dto.js';
import { ListQueryDto } from '../../common/pagination/pagination.js';
import { BreakdownLineDto } from '../../usage/dto/usage-event.dto.js';
import { IsInstant } from '../time-range.js';

const FROM_DOC =
  'Inclusive lower bound on recordedAt (when the event was booked): a UTC date (2026-11-01) or an ' +
  'ISO-8601 date-time with Z or an offset';
const TO_DOC = 'Exclusive upper bound on recordedAt, same formats as from; must be later than from';

export const OUTCOMES = ['charged', 'skipped', 'review', 'voided'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const SUMMARY_GROUPS = ['model', 'day'] as const;
export type SummaryGroup = (typeof SUMMARY_GROUPS)[number];

/** The range both the summary and the filtered views take. */
export class UsageRangeQueryDto {
  @ApiPropertyOptional({ example: '2026-11-01', description: FROM_DOC })
  @IsOptional()
  @IsInstant()
  from?: string;

  @ApiPropertyOptional({ example: '2026-12-01', description: TO_DOC })
  @IsOptional()
  @IsInstant()
  to?: string;
}

export class UsageExportQueryDto extends UsageRangeQueryDto {
  @ApiPropertyOptional({ example: 'gpt-image-2' })
  @IsOptional()
  @IsString()
  @Matches(MODEL_NAME, { message: 'model must be a model name' })
  model?: string;

  @ApiPropertyOptional({ description: 'Only the events of this API token' })
  @IsOptional()
  @IsUUID('all', { message: 'tokenId must be a token id (uuid)' })
  tokenId?: string;

  @ApiPropertyOptional({ enum: OUTCOMES })
  @IsOptional()
  @IsIn(OUTCOMES, { message: 'outcome must be charged, skipped, review or voided' })
  outcome?: Outcome;
}

/** The list's filters plus ?limit= and ?cursor= (keyset on recordedAt, then id). */
export class UsageQueryDto extends IntersectionType(ListQueryDto, UsageExportQueryDto) {}

export class UsageSummaryQueryDto extends UsageRangeQueryDto {
  @ApiPropertyOptional({ enum: SUMMARY_GROUPS, default: 'model' })
  @IsOptional()
  @IsIn(SUMMARY_GROUPS, { message: 'groupBy must be model or day' })
  groupBy?: SummaryGroup;
}

export class UsageItemDto {
  @ApiProperty() requestId!: string;
  @ApiProperty() tokenId!: string;
  @ApiProperty({ description: "The token's current name" }) tokenName!: string;
  @ApiProperty({ example: 'gpt-image-2' }) model!: string;
  @ApiProperty({ enum: OUTCOMES }) outcome!: Outcome;
  @ApiProperty({
    type: String,
    nullable: true,
    enum: ['moderated', 'upstream_error', 'timeout', 'no_output', 'above_review_limit'],
    description: 'Why a skipped, review or voided event was not billed; null when charged',
  })
  reason!: string | null;
  @ApiProperty({
    example: '0.035062',
    description: 'Exact, every digit stored; "0" when skipped, in review or voided',
  })
  charge!: string;
  @ApiProperty({ example: 'default' }) group!: string;
  @ApiProperty({ example: '1.0' }) ratio!: string;
  @ApiProperty({ example: 1 }) priceVersion!: number;
  @ApiProperty({ type: [BreakdownLineDto] }) breakdown!: BreakdownLineDto[];
  @ApiProperty() occurredAt!: string;
  @ApiProperty({ description: 'When it was booked: the time from/to filter on' })
  recordedAt!: string;
}

export class UsagePageDto {
  @ApiProperty({ type: [UsageItemDto], description: 'Newest first (recordedAt, then id)' })
  data!: UsageItemDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class UsageTotalsDto {
  @ApiProperty({ example: 120 }) requests!: number;
  @ApiProperty({ example: 118 }) charged!: number;
  @ApiProperty({ example: 2 }) skipped!: number;
  @ApiProperty({
    example: 0,
    description:
      'Events priced above their model reviewAbove, counted in the day they arrived; an approved one adds to charged and charge in the day it was approved',
  })
  review!: number;
  @ApiProperty({ example: 10680, description: 'usage.inputTokens of every event' })
  inputTokens!: number;
  @ApiProperty({ example: 137400, description: 'usage.outputTokens of every event' })
  outputTokens!: number;
  @ApiProperty({
    example: 118,
    description: 'Images of charged events (1 when the event gave none)',
  })
  images!: number;
  @ApiProperty({ example: '4.2074400000' }) charge!: string;
}

export class UsageSummaryRowDto extends UsageTotalsDto {
  @ApiProperty({ example: 'gpt-image-2', description: 'The model, or the UTC day (YYYY-MM-DD)' })
  key!: string;
}

export class UsageSummaryDto {
  @ApiProperty({ enum: SUMMARY_GROUPS }) groupBy!: SummaryGroup;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Canonical UTC form of from; null: open',
  })
  from!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Canonical UTC form of to; null: open',
  })
  to!: string | null;
  @ApiProperty({ type: [UsageSummaryRowDto], description: 'By model name, or by day ascending' })
  rows!: UsageSummaryRowDto[];
  @ApiProperty({ type: UsageTotalsDto }) totals!: UsageTotalsDto;
}
