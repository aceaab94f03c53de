import { ApiProperty } from '@nestjs/swagger';

export class HoldDto {
  @ApiProperty({ example: 'req_01J...' }) requestId!: string;
  @ApiProperty() tokenId!: string;
  @ApiProperty({ example: 'gpt-image-2' }) model!: string;
  @ApiProperty({ example: '0.2532', description: 'USD set aside: likely price × group ratio' })
  amount!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty() expiresAt!: string;
}

export class HoldPageDto {
  @ApiProperty({ type: [HoldDto] }) data!: HoldDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

/** The hold as authorize answers it. */
export class AuthorizeHoldDto {
  @ApiProperty() requestId!: string;
  @ApiProperty({ example: '0.036' }) amount!: string;
  @ApiProperty() expiresAt!: string;
}

export class ReleaseResultDto {
  @ApiProperty() requestId!: string;
  @ApiProperty({
    enum: ['released', 'settled', 'expired'],
    description:
      'released: this call or an earlier one gave the money back; settled: its usage event came first ' +
      'and settled it; expired: it had expired already',
  })
  status!: 'released' | 'settled' | 'expired';
}
