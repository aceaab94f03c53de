import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsNotEmpty, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsDecimalString } from '../../common/http/validation.js';
import { ListQueryDto } from '../../common/pagination/pagination.js';
import { PromotionRefDto } from './promotion.dto.js';

export const TOP_UP_STATUSES = ['pending', 'paid', 'failed', 'expired', 'needs_review'] as const;
export type TopUpStatus = (typeof TOP_UP_STATUSES)[number];

export const RESOLVE_ACTIONS = ['credit', 'dismiss'] as const;
export type ResolveAction = (typeof RESOLVE_ACTIONS)[number];

export class CreateTopUpDto {
  @ApiProperty({
    example: '100.00',
    description:
      'Credit to buy, USD: a decimal string from 1.00 to 10000.00 with at most 2 decimals',
  })
  @IsDecimalString({ min: '1.00', max: '10000.00', maxScale: 2 })
  credit!: string;
}

export class TopUpResolutionDto {
  @ApiProperty({
    enum: RESOLVE_ACTIONS,
    description:
      'credit: the credit was booked (status paid); dismiss: closed without credit (status failed, or paid ' +
      'when the credit had been booked before the review)',
  })
  action!: ResolveAction;
  @ApiPropertyOptional({ description: "The admin's note (admin views only)" })
  note?: string;
  @ApiProperty() resolvedAt!: string;
}

export class TopUpDto {
  @ApiProperty() id!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty({
    enum: TOP_UP_STATUSES,
    description:
      'pending: waiting for payment; paid: credit booked; failed: payment failed, Checkout could not be created, ' +
      'or an admin dismissed its review; expired: Checkout expired unpaid; needs_review: waiting for an admin ' +
      '(paid but not creditable, e.g. the amount differs, nothing credited; or refunds above the amount paid, or a ' +
      'dispute Stripe reported without a usable amount, on a credited top-up)',
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
  @ApiProperty({
    example: '0.00',
    description:
      "Cash refunded so far: Stripe's running total less refunds it reported failed or canceled",
  })
  refundedCash!: string;
  @ApiProperty({
    example: '0.00',
    description:
      'Credit refunds took back so far: credit × refundedCash ÷ price, never more than the credit disputes left',
  })
  refundedCredit!: string;
  @ApiProperty({
    example: '0.00',
    description:
      'Credit open disputes hold back: credit × disputed cash ÷ price per dispute, never more than refunds and ' +
      'earlier disputes left; a dispute won (or its funds reinstated) gives its part back',
  })
  disputedCredit!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Why a top-up needs review' })
  reviewReason!: string | null;
  @ApiProperty({
    type: TopUpResolutionDto,
    nullable: true,
    description: "An admin's final decision on the top-up's review; null until then",
  })
  resolution!: TopUpResolutionDto | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
  @ApiProperty({ type: String, nullable: true }) paidAt!: string | null;
}

export class TopUpPageDto {
  @ApiProperty({ type: [TopUpDto] }) data!: TopUpDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class AdminTopUpsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({
    enum: TOP_UP_STATUSES,
    description: 'Only top-ups in this status (needs_review: the review queue); omitted: all',
  })
  @IsOptional()
  @IsIn(TOP_UP_STATUSES, {
    message: `status must be one of ${TOP_UP_STATUSES.join(', ')}`,
  })
  status?: TopUpStatus;
}

export class ResolveTopUpDto {
  @ApiProperty({
    enum: RESOLVE_ACTIONS,
    description:
      "credit: book the top-up's credit (once; only if it was never booked); dismiss: close it without credit",
  })
  @IsIn(RESOLVE_ACTIONS, { message: 'action must be credit or dismiss' })
  action!: ResolveAction;

  @ApiProperty({ example: 'Paid 84.00 by bank transfer; the customer confirmed', maxLength: 1000 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(1000)
  note!: string;
}
