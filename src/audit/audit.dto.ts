import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';
import { ListQueryDto } from '../common/pagination/pagination.js';

export class AuditQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'alice', description: 'The admin key name that acted' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'actor must be an admin key name' })
  actor?: string;

  @ApiPropertyOptional({
    example: 'account:6c07f0c2-...',
    description: 'What was changed, as kind:id',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[\x21-\x7e]{1,300}$/, {
    message: 'target must be kind:id, printable, at most 300 characters',
  })
  target?: string;
}

export class AuditEntryDto {
  @ApiProperty() id!: string;
  @ApiProperty({ example: 'alice' }) actor!: string;
  @ApiProperty({ example: 'account.update' }) action!: string;
  @ApiProperty({ example: 'account:6c07f0c2-778e-467a-b9c7-16ea82a2707f' }) target!: string;
  @ApiProperty({ nullable: true, description: 'The changed resource before (null: created)' })
  before!: unknown;
  @ApiProperty({ nullable: true, description: 'The changed resource after (null: deleted)' })
  after!: unknown;
  @ApiProperty() at!: string;
}

export class AuditPageDto {
  @ApiProperty({ type: [AuditEntryDto] }) data!: AuditEntryDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
