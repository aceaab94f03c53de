import { ApiProperty } from '@nestjs/swagger';
import { BreakdownLineDto } from './usage-event.dto.js';

export class UsageReviewDto {
  @ApiProperty() requestId!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty() tokenId!: string;
  @ApiProperty({ example: 'gpt-image-2' }) model!: string;
  @ApiProperty({ enum: ['review', 'charged', 'voided'] }) outcome!: string;
  @ApiProperty({
    example: '38000000.00',
    description: 'The charge as priced: booked only if approved',
  })
  charge!: string;
  @ApiProperty() group!: string;
  @ApiProperty({ example: '1.0' }) ratio!: string;
  @ApiProperty() priceVersion!: number;
  @ApiProperty({ type: [BreakdownLineDto] }) breakdown!: BreakdownLineDto[];
  @ApiProperty() occurredAt!: string;
  @ApiProperty() recordedAt!: string;
  @ApiProperty({ type: String, nullable: true, description: 'When it was approved or voided' })
  reviewedAt!: string | null;
}

export class UsageReviewPageDto {
  @ApiProperty({ type: [UsageReviewDto] }) data!: UsageReviewDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
