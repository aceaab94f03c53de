import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { MODEL_NAME } from '../../catalog/dto/price.dto.js';
import { GROUP_NAME } from '../../groups/dto/group.dto.js';
import { PromotionRefDto } from './promotion.dto.js';

export const MAX_QUOTE_N = 100_000;

export class QuoteQueryDto {
  @ApiProperty({ example: 'gpt-image-2' })
  @IsString()
  @Matches(MODEL_NAME, { message: 'model must be a model name' })
  model!: string;

  @ApiPropertyOptional({
    example: '1024x1024',
    description: 'Required for tokens-mode models (reference prices)',
  })
  @IsOptional()
  @IsString()
  @Matches(/^\d{1,5}x\d{1,5}$/, { message: 'size must look like 1024x1024' })
  size?: string;

  @ApiPropertyOptional({
    example: 'high',
    description: 'Required for tokens-mode models (reference prices)',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z]{1,32}$/, { message: 'quality must be a quality such as low, medium or high' })
  quality?: string;

  @ApiPropertyOptional({
    default: 1,
    minimum: 1,
    maximum: MAX_QUOTE_N,
    description: 'Images (or requests for per_request models)',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_QUOTE_N)
  n?: number;

  @ApiPropertyOptional({ example: 'default', description: 'Omitted: the default group' })
  @IsOptional()
  @IsString()
  @Matches(GROUP_NAME, { message: 'group must match ^[A-Za-z0-9_-]{1,64}$' })
  group?: string;
}

export class QuoteDto {
  @ApiProperty() model!: string;
  @ApiProperty({ enum: ['tokens', 'per_request', 'per_image'] }) mode!: string;
  @ApiProperty({ description: 'The price version quoted' }) priceVersion!: number;
  @ApiProperty({ type: String, nullable: true }) size!: string | null;
  @ApiProperty({ type: String, nullable: true }) quality!: string | null;
  @ApiProperty() n!: number;
  @ApiProperty({
    example: '0.211',
    description: 'Reference (tokens mode) or flat price of one image or request',
  })
  unitPrice!: string;
  @ApiProperty({ example: '0.211', description: 'unitPrice × n' }) listPrice!: string;
  @ApiProperty({ example: 'default' }) group!: string;
  @ApiProperty({ example: '1.0' }) ratio!: string;
  @ApiProperty({ example: '0.211', description: 'listPrice × ratio: the credit the usage costs' })
  price!: string;
  @ApiProperty({
    type: PromotionRefDto,
    nullable: true,
    description:
      'The lowest-rate promotion active now, whatever its minCredit (the best top-up available)',
  })
  promotion!: PromotionRefDto | null;
  @ApiProperty({
    example: '0.17935',
    description: 'price × promotion rate (price when none): the cash the usage costs',
  })
  cashPrice!: string;
}
