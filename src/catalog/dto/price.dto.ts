import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import {
  BelongsTo,
  IsDecimalString,
  IsIntInRange,
  IsNotPast,
  OnlyFor,
} from '../../common/http/validation.js';

import { BILLING_MODES, type BillingMode } from '../../pricing/pricing.js';
export { BILLING_MODES, type BillingMode } from '../../pricing/pricing.js';
export const MODEL_NAME = /^[A-Za-z0-9._:-]{1,128}$/;

/** A tokens price's per-token fields, as PutPriceDto takes and PriceVersionDto shows them. */
export const TOKEN_FIELDS = [
  'inputText',
  'inputImage',
  'cachedInput',
  'outputText',
  'outputImage',
] as const;

const TOKEN_PRICE = { min: '0', max: '1000000', maxScale: 10, allowUndefined: true };
const FLAT_PRICE = {
  min: '0',
  minExclusive: true,
  max: '1000000',
  maxScale: 10,
  allowUndefined: true,
};

export class ReferencePriceDto {
  @ApiProperty({ example: '1024x1024' })
  @IsString()
  @Matches(/^\d{1,5}x\d{1,5}$/, { message: 'size must look like 1024x1024' })
  size!: string;

  @ApiProperty({ example: 'high', enum: ['low', 'medium', 'high', 'auto', 'standard', 'hd'] })
  @IsIn(['low', 'medium', 'high', 'auto', 'standard', 'hd'])
  quality!: string;

  @ApiProperty({ example: '0.211', description: 'USD per image, for quotes' })
  @IsDecimalString(FLAT_PRICE)
  price!: string;
}

export class PutPriceDto {
  @ApiProperty({ enum: BILLING_MODES })
  @IsIn(BILLING_MODES)
  mode!: BillingMode;

  @ApiPropertyOptional({ example: '8', description: 'tokens mode: USD per 1M input text tokens' })
  @BelongsTo('mode', ['tokens'], BILLING_MODES)
  @IsDecimalString(TOKEN_PRICE)
  inputText?: string;

  @ApiPropertyOptional({ example: '8', description: 'tokens mode: USD per 1M input image tokens' })
  @BelongsTo('mode', ['tokens'], BILLING_MODES)
  @IsDecimalString(TOKEN_PRICE)
  inputImage?: string;

  @ApiPropertyOptional({ example: '2', description: 'tokens mode: USD per 1M cached input tokens' })
  @BelongsTo('mode', ['tokens'], BILLING_MODES)
  @IsDecimalString(TOKEN_PRICE)
  cachedInput?: string;

  @ApiPropertyOptional({ example: '30', description: 'tokens mode: USD per 1M output text tokens' })
  @BelongsTo('mode', ['tokens'], BILLING_MODES)
  @IsDecimalString(TOKEN_PRICE)
  outputText?: string;

  @ApiPropertyOptional({
    example: '30',
    description: 'tokens mode: USD per 1M output image tokens',
  })
  @BelongsTo('mode', ['tokens'], BILLING_MODES)
  @IsDecimalString(TOKEN_PRICE)
  outputImage?: string;

  @ApiPropertyOptional({
    example: 100,
    description: 'tokens mode: output image tokens added per streamed partial image',
  })
  @BelongsTo('mode', ['tokens'], BILLING_MODES)
  @IsIntInRange(0, 1000000, { allowUndefined: true })
  partialImageOutputTokens?: number;

  @ApiPropertyOptional({
    example: '0.03',
    description: 'per_request mode: USD per successful request',
  })
  @BelongsTo('mode', ['per_request'], BILLING_MODES)
  @IsDecimalString(FLAT_PRICE)
  perRequest?: string;

  @ApiPropertyOptional({ example: '0.03', description: 'per_image mode: USD per image returned' })
  @BelongsTo('mode', ['per_image'], BILLING_MODES)
  @IsDecimalString(FLAT_PRICE)
  perImage?: string;

  @ApiPropertyOptional({
    type: [ReferencePriceDto],
    description: 'Per-image reference prices used for quotes',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => ReferencePriceDto)
  referencePrices?: ReferencePriceDto[];

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    example: '5.00',
    description:
      'USD: an event whose charge (after the group ratio) exceeds this is stored with outcome review ' +
      "and not booked until an admin approves it. Omitted: the previous version's; null: no review",
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsDecimalString(FLAT_PRICE)
  reviewAbove?: string | null;

  @ApiPropertyOptional({
    example: '0.25',
    description:
      'tokens mode: USD per image that authorize holds when the request names no priced size and quality. ' +
      "Omitted: the previous version's, else the highest reference price, else 0.25",
  })
  @OnlyFor('mode', ['tokens'], BILLING_MODES)
  @IsDecimalString(TOKEN_PRICE)
  holdAmount?: string;

  @ApiPropertyOptional({ description: 'ISO-8601; now or later. Omitted: effective at once' })
  @IsOptional()
  @IsISO8601({ strict: true })
  @IsNotPast(60_000, {
    message: 'effectiveFrom must be now or later: charges already made keep their price',
  })
  effectiveFrom?: string;
}

export class ReferencePriceView {
  @ApiProperty() size!: string;
  @ApiProperty() quality!: string;
  @ApiProperty() price!: string;
}

export class PriceVersionDto {
  @ApiProperty() model!: string;
  @ApiProperty({ description: 'Version number, per model, recorded on every charge' })
  version!: number;
  @ApiProperty({ enum: BILLING_MODES }) mode!: BillingMode;
  @ApiPropertyOptional() inputText?: string;
  @ApiPropertyOptional() inputImage?: string;
  @ApiPropertyOptional() cachedInput?: string;
  @ApiPropertyOptional() outputText?: string;
  @ApiPropertyOptional() outputImage?: string;
  @ApiPropertyOptional() partialImageOutputTokens?: number;
  @ApiPropertyOptional() perRequest?: string;
  @ApiPropertyOptional() perImage?: string;
  @ApiProperty({ type: [ReferencePriceView] }) referencePrices!: ReferencePriceView[];
  @ApiProperty({ type: String, nullable: true, example: '5.00' }) reviewAbove!: string | null;
  @ApiPropertyOptional({ example: '0.25' }) holdAmount?: string;
  @ApiProperty() effectiveFrom!: string;
  @ApiProperty() createdAt!: string;
}

export class PriceVersionPageDto {
  @ApiProperty({ type: [PriceVersionDto] }) data!: PriceVersionDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
