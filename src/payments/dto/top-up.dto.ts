import { ApiProperty } from '@nestjs/swagger';
import { IsDecimalString } from '../../common/http/validation.js';
import { PromotionRefDto } from './promotion.dto.js';

export const TOP_UP_STATUSES = ['pending', 'paid', 'failed', 'expired', 'needs_review'] as const;
export type TopUpStatus = (typeof TOP_UP_STATUSES)[number];

export class CreateTopUpDto {
  @ApiProperty({
    example: '100.00',
    description:
      'Credit to buy, USD: a decimal string from 1.00 to 10000.00 with at most 2 decimals',
  })
  @IsDecimalString({ min: '1.00', max: '10000.00', maxScale: 2 })
  credit!: string;
}

export class TopUpDto {
  @ApiProperty() id!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty({
    enum: TOP_UP_STATUSES,
    description:
      'pending: waiting for payment; paid: credit booked; failed: payment failed or Checkout could not be created; ' +
      'expired: Checkout expired unpaid; needs_review: paid but not creditable (e.g. the amount differs), nothing credited',
  })
  status!: TopUpStatus;
  @ApiProperty({ example: '100.00', description: 'Credit booked to the balance once paid' })
  credit!: string;
  @ApiProperty({
    example: '85.00',
    description: 'Cash to pay: credit × promotion rate, half-up to cents',
  })
  price!: string;
  @ApiProperty({ example: 'USD' }) currency!: 'USD';
  @ApiProperty({
    type: PromotionRefDto,
    nullable: true,
    description: 'The promotion the price was computed with',
  })
  promotion!: PromotionRefDto | null;
  @ApiProperty({ type: String, nullable: true, description: 'Stripe Checkout page to pay at' })
  checkoutUrl!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    example: '85.00',
    description: 'What Stripe reported paid',
  })
  amountPaid!: string | null;
  @ApiProperty({ example: '0.00', description: 'Cash refunded so far' }) refundedCash!: string;
  @ApiProperty({
    example: '0.00',
    description: 'Credit refunds took back so far: credit × refundedCash ÷ price',
  })
  refundedCredit!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Why a top-up needs review' })
  reviewReason!: string | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
  @ApiProperty({ type: String, nullable: true }) paidAt!: string | null;
}

export class TopUpPageDto {
  @ApiProperty({ type: [TopUpDto] }) data!: TopUpDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
