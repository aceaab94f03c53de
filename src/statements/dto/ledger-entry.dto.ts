import { ApiProperty } from '@nestjs/swagger';
import { LEDGER_ENTRY_TYPES } from '../../ledger/ledger.types.js';

export const LEDGER_TYPES = LEDGER_ENTRY_TYPES;

export class LedgerEntryDto {
  @ApiProperty({ example: '1042', description: 'Ascending in booking order' }) id!: string;
  @ApiProperty({ enum: LEDGER_TYPES }) type!: string;
  @ApiProperty({
    example: '-0.0350620000',
    description: 'Signed USD: credits positive, debits negative',
  })
  amount!: string;
  @ApiProperty({ example: '99.964938', description: 'The balance right after this entry' })
  balanceAfter!: string;
  @ApiProperty() description!: string;
  @ApiProperty({
    description:
      'The cause: the usage requestId; the top-up id; for a refund `<chargeId>:<cumulative refunded cents>` (or ' +
      '`<refundId>:failed` when a failed refund gave credit back); for a dispute its id (`<disputeId>:reinstated` ' +
      'when booked back); the redemption code id; the adjustment id',
  })
  reference!: string;
  @ApiProperty({ description: 'When it was booked; it belongs to that UTC month' })
  createdAt!: string;
}

export class LedgerPageDto {
  @ApiProperty({ type: [LedgerEntryDto], description: 'Newest first' }) data!: LedgerEntryDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
