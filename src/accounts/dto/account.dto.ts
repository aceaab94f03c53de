import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEmail, IsIn, IsNotEmpty, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsDecimalString } from '../../common/http/validation.js';

export class CreateAccountDto {
  @ApiProperty({ example: 'Acme Imaging' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name!: string;

  @ApiPropertyOptional({ example: 'billing@acme.test' })
  @IsOptional()
  @IsEmail()
  @MaxLength(320)
  email?: string;
}

export class UpdateAccountDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name?: string;

  @ApiPropertyOptional({ enum: ['active', 'suspended'] })
  @IsOptional()
  @IsIn(['active', 'suspended'])
  status?: 'active' | 'suspended';

  @ApiPropertyOptional({
    example: '500.00',
    description:
      'USD a postpaid account may spend past zero: authorize allows while balance − held ≥ −creditLimit',
  })
  @IsOptional()
  @IsDecimalString({ min: '0', max: '1000000000', maxScale: 10 })
  creditLimit?: string;
}

export class AccountDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: String, nullable: true }) email!: string | null;
  @ApiProperty({ enum: ['active', 'suspended'] }) status!: 'active' | 'suspended';
  @ApiProperty({
    example: '100.00',
    description: 'Prepaid balance in USD, every digit the ledger holds',
  })
  balance!: string;
  @ApiProperty({ example: '0.50', description: 'USD set aside by active holds' }) held!: string;
  @ApiProperty({ example: '99.50', description: 'balance − held' }) available!: string;
  @ApiProperty({ example: '0.00' }) creditLimit!: string;
  @ApiProperty({ example: 'USD' }) currency!: 'USD';
  @ApiProperty({ example: 'ck_AbC1234', description: 'First characters of the console key' })
  consoleKeyPrefix!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
}

export class AccountWithKeyDto extends AccountDto {
  @ApiProperty({ description: 'The console key (ck_...): shown only in this response' })
  consoleKey!: string;
}

export class AccountPageDto {
  @ApiProperty({ type: [AccountDto] }) data!: AccountDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class MeDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: String, nullable: true }) email!: string | null;
  @ApiProperty({ enum: ['active', 'suspended'] }) status!: 'active' | 'suspended';
  @ApiProperty({ example: '100.00' }) balance!: string;
  @ApiProperty({ example: '0.50', description: 'USD set aside by active holds' }) held!: string;
  @ApiProperty({ example: '99.50', description: 'balance − held' }) available!: string;
  @ApiProperty({ example: '0.00' }) creditLimit!: string;
  @ApiProperty({ example: 'USD' }) currency!: 'USD';
}

export class CreateAdjustmentDto {
  @ApiProperty({
    example: '-5.00',
    description: 'Signed decimal string: positive credits, negative debits',
  })
  @IsDecimalString({ min: '-1000000000', max: '1000000000', maxScale: 10 })
  amount!: string;

  @ApiProperty({ example: 'Goodwill credit for incident 42' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  reason!: string;
}

export class AdjustmentDto {
  @ApiProperty() id!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty({ example: '-5.00' }) amount!: string;
  @ApiProperty() reason!: string;
  @ApiProperty() idempotencyKey!: string;
  @ApiProperty() ledgerEntryId!: string;
  @ApiProperty({ example: '95.00' }) balanceAfter!: string;
  @ApiProperty() createdAt!: string;
}
