import { ApiProperty } from '@nestjs/swagger';

export class StatementTopUpsDto {
  @ApiProperty({ example: 1, description: 'Top-ups credited this month' }) count!: number;
  @ApiProperty({ example: '100.00', description: 'Credit they added' }) credit!: string;
  @ApiProperty({ example: '85.00', description: 'Cash paid for them' }) cashPaid!: string;
}

export class StatementRedemptionsDto {
  @ApiProperty({ example: 1, description: 'Redemption codes redeemed this month' }) count!: number;
  @ApiProperty({ example: '10.00', description: 'Credit they added' }) credit!: string;
}

export class StatementModelUsageDto {
  @ApiProperty({ example: 'gpt-image-2' }) model!: string;
  @ApiProperty({ example: 120 }) requests!: number;
  @ApiProperty({ example: 118 }) charged!: number;
  @ApiProperty({ example: 2 }) skipped!: number;
  @ApiProperty({
    example: 0,
    description:
      'Events priced above their model reviewAbove, counted in the month they arrived; an approved one adds to charged and charge in the month it was approved',
  })
  review!: number;
  @ApiProperty({ example: '4.2074400000' }) charge!: string;
}

export class StatementUsageDto {
  @ApiProperty({ example: 120 }) requests!: number;
  @ApiProperty({ example: 118 }) charged!: number;
  @ApiProperty({
    example: 2,
    description: 'Recorded but not billed (see the usage list for reasons)',
  })
  skipped!: number;
  @ApiProperty({
    example: 0,
    description:
      'Events priced above their model reviewAbove, counted in the month they arrived; an approved one adds to charged and charge in the month it was approved',
  })
  review!: number;
  @ApiProperty({ example: '4.2074400000' }) charge!: string;
  @ApiProperty({ type: [StatementModelUsageDto], description: 'By model name' })
  byModel!: StatementModelUsageDto[];
}

export class StatementDto {
  @ApiProperty({ example: '2026-11', description: 'Calendar month, UTC' }) period!: string;
  @ApiProperty({ example: 'USD' }) currency!: 'USD';
  @ApiProperty({
    example: '10.00',
    description: 'Balance after the last entry booked before the month',
  })
  openingBalance!: string;
  @ApiProperty({ type: StatementTopUpsDto }) topUps!: StatementTopUpsDto;
  @ApiProperty({ type: StatementRedemptionsDto }) redemptions!: StatementRedemptionsDto;
  @ApiProperty({ type: StatementUsageDto }) usage!: StatementUsageDto;
  @ApiProperty({
    example: '0.00',
    description: 'Credit taken back by refunds, shown positive (net of refunds that failed)',
  })
  refunds!: string;
  @ApiProperty({
    example: '0.00',
    description:
      'Net of disputes, signed: negative for credit disputes held back, positive for disputes won back',
  })
  disputes!: string;
  @ApiProperty({ example: '-5.00', description: 'Net of adjustments, signed' })
  adjustments!: string;
  @ApiProperty({
    example: '100.7925600000',
    description:
      'Balance after the last entry booked in the month (the opening balance when none); always ' +
      'openingBalance + topUps.credit + redemptions.credit − usage.charge − refunds + disputes + adjustments, ' +
      'to the last digit',
  })
  closingBalance!: string;
}
