import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { IsDecimalString } from '../../common/http/validation.js';

export const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const RATIO = { min: '0', minExclusive: true, max: '100', maxScale: 10 };

export class CreateGroupDto {
  @ApiProperty({ example: 'image2Enterprise', pattern: GROUP_NAME.source })
  @IsString()
  @Matches(GROUP_NAME, { message: 'name must match ^[A-Za-z0-9_-]{1,64}$' })
  name!: string;

  @ApiProperty({ example: '1.2', description: 'Decimal string, > 0 and <= 100' })
  @IsDecimalString(RATIO)
  ratio!: string;

  @ApiPropertyOptional({ maxLength: 500 })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  description?: string;

  @ApiPropertyOptional({
    default: false,
    description: 'Whether customers may put their tokens in it; omitted: not selectable',
  })
  @IsOptional()
  @IsBoolean()
  selectable?: boolean;

  @ApiPropertyOptional({
    default: false,
    description: 'Make this the default group (the previous default stops being one)',
  })
  @IsOptional()
  @IsBoolean()
  isDefault?: boolean;
}

export class UpdateGroupDto {
  @ApiPropertyOptional({ example: '1.3' })
  @IsOptional()
  @IsDecimalString(RATIO)
  ratio?: string;

  @ApiPropertyOptional({ maxLength: 500 })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  description?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  selectable?: boolean;

  @ApiPropertyOptional({
    description: 'Only true is accepted: make another group the default instead of unsetting it',
  })
  @IsOptional()
  @IsBoolean()
  isDefault?: boolean;
}

export class GroupDto {
  @ApiProperty() name!: string;
  @ApiProperty({ example: '1.2' }) ratio!: string;
  @ApiProperty() description!: string;
  @ApiProperty() selectable!: boolean;
  @ApiProperty() isDefault!: boolean;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
}

export class GroupPageDto {
  @ApiProperty({ type: [GroupDto] }) data!: GroupDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
