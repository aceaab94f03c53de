import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsISO8601, IsNotEmpty, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsDecimalString, IsIntInRange, IsNotPast } from '../../common/http/validation.js';

export const MAX_BATCH = 1000;

export class CreateRedemptionBatchDto {
  @ApiProperty({ example: 'Reseller Acme, November', maxLength: 200 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name!: string;

  @ApiProperty({
    example: '10.00',
    description: 'Credit each code books, USD: a decimal string > 0 and <= 100000',
  })
  @IsDecimalString({ min: '0', minExclusive: true, max: '100000', maxScale: 10 })
  credit!: string;

  @ApiProperty({ example: 100, minimum: 1, maximum: MAX_BATCH, description: 'Codes to make' })
  @IsIntInRange(1, MAX_BATCH)
  count!: number;

  @ApiPropertyOptional({
    type: String,
    example: '2027-01-01T00:00:00Z',
    description: 'ISO-8601, in the future; omitted: the codes never expire',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  @IsNotPast(0)
  expiresAt?: string;
}

export class RedemptionBatchDto {
  @ApiProperty() batchId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: '10.00' }) credit!: string;
  @ApiProperty({ example: 100 }) count!: number;
  @ApiProperty({ example: 3, description: 'Codes redeemed so far' }) redeemed!: number;
  @ApiProperty({ example: 0, description: 'Codes disabled before being redeemed' })
  disabled!: number;
  @ApiProperty({ type: String, nullable: true }) expiresAt!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'When the batch was disabled (DELETE); null: its codes still redeem',
  })
  disabledAt!: string | null;
  @ApiProperty() createdAt!: string;
}

export class CreatedRedemptionBatchDto {
  @ApiProperty() batchId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: '10.00' }) credit!: string;
  @ApiProperty({ example: 100 }) count!: number;
  @ApiProperty({ type: String, nullable: true }) expiresAt!: string | null;
  @ApiProperty({
    type: [String],
    example: ['7K2M-9QXD-4HVR-T0BW-E5NJ'],
    description:
      'The codes, shown only here: only their SHA-256 is stored. 100 random bits each (Crockford base32); ' +
      'case, spaces and dashes do not matter when redeeming',
  })
  codes!: string[];
}

export class RedemptionBatchPageDto {
  @ApiProperty({ type: [RedemptionBatchDto], description: 'Newest first' })
  data!: RedemptionBatchDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class RedeemCodeDto {
  @ApiProperty({ example: '7K2M-9QXD-4HVR-T0BW-E5NJ', maxLength: 64 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  code!: string;
}

export class RedemptionDto {
  @ApiProperty({ example: '10.00', description: 'Credit the code booked' }) credit!: string;
  @ApiProperty({ example: '110.00', description: 'The balance right after it' }) balance!: string;
}
