import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsBoolean,
  IsEmail,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  MinLength,
} from 'class-validator';
import { MeDto } from '../../accounts/dto/account.dto.js';
import { IsDecimalString } from '../../common/http/validation.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../passwords.js';

const PASSWORD_DOC = `At least ${MIN_PASSWORD_LENGTH} characters (at most ${MAX_PASSWORD_LENGTH})`;

export class SignUpDto {
  @ApiProperty({ example: 'Acme Imaging', description: 'The account name' })
  @IsString()
  @Matches(/\S/, { message: 'name must not be empty' })
  @MaxLength(200)
  name!: string;

  @ApiProperty({ example: 'ops@acme.test' })
  @IsEmail({}, { message: 'email must be an email address' })
  @MaxLength(320)
  email!: string;

  @ApiProperty({ description: PASSWORD_DOC, format: 'password' })
  @IsString()
  @MinLength(MIN_PASSWORD_LENGTH, {
    message: `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
  })
  @MaxLength(MAX_PASSWORD_LENGTH)
  password!: string;
}

export class SignInDto {
  @ApiProperty({ example: 'ops@acme.test' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(320)
  email!: string;

  @ApiProperty({ format: 'password' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_LENGTH)
  password!: string;
}

export class SignOutDto {
  @ApiPropertyOptional({
    default: false,
    description: 'End every session of this login, not only this one',
  })
  @IsOptional()
  @IsBoolean()
  everywhere?: boolean;
}

export class InviteTokenDto {
  @ApiProperty({ description: 'The token from the invite link (after #token=)' })
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{20,128}$/, { message: 'token must be the token of an invite link' })
  token!: string;
}

export class SetPasswordDto extends InviteTokenDto {
  @ApiProperty({ description: PASSWORD_DOC, format: 'password' })
  @IsString()
  @MinLength(MIN_PASSWORD_LENGTH, {
    message: `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
  })
  @MaxLength(MAX_PASSWORD_LENGTH)
  password!: string;
}

export class CreateInviteDto {
  @ApiProperty({ example: 'colleague@acme.test', description: 'Who may set a password' })
  @IsEmail({}, { message: 'email must be an email address' })
  @MaxLength(320)
  email!: string;
}

export class InviteDto {
  @ApiProperty() accountId!: string;
  @ApiProperty({ example: 'colleague@acme.test' }) email!: string;
  @ApiProperty({
    example: 'https://billing.example.com/console/set-password#token=...',
    description:
      'One-time link to set the password, valid 72 hours; shown only here (send it to the person). ' +
      'A new invite for the same email replaces this one.',
  })
  inviteUrl!: string;
  @ApiProperty() expiresAt!: string;
}

export class InviteInfoDto {
  @ApiProperty({ example: 'colleague@acme.test' }) email!: string;
  @ApiProperty({ example: 'Acme Imaging' }) accountName!: string;
  @ApiProperty() expiresAt!: string;
}

export class SessionDto {
  @ApiProperty({ example: 'ops@acme.test', description: 'The signed-in login' }) email!: string;
  @ApiProperty({ description: 'Idle expiry; slides with use, at most 30 days after sign-in' })
  expiresAt!: string;
  @ApiProperty({ type: MeDto }) account!: MeDto;
}

export class SelectableGroupDto {
  @ApiProperty({ example: 'default' }) name!: string;
  @ApiProperty({ example: '1.0' }) ratio!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ description: 'Tokens created without a group get this one' }) isDefault!: boolean;
}

export class SelectableGroupListDto {
  @ApiProperty({ type: [SelectableGroupDto], description: 'By name' })
  data!: SelectableGroupDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Always null: one page' })
  nextCursor!: null;
}

export class ActivePromotionDto {
  @ApiProperty() id!: string;
  @ApiProperty({ example: '15% off top-ups' }) name!: string;
  @ApiProperty({ example: '0.85', description: 'Pay credit × rate' }) rate!: string;
  @ApiProperty({ example: '0.00', description: 'Smallest credit it applies to' })
  minCredit!: string;
  @ApiProperty({ type: String, nullable: true }) endsAt!: string | null;
}

export class ActivePromotionListDto {
  @ApiProperty({ type: [ActivePromotionDto], description: 'Lowest rate first' })
  data!: ActivePromotionDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Always null: one page' })
  nextCursor!: null;
}

export class TopUpPriceQueryDto {
  @ApiProperty({ example: '100.00', description: 'Credit to buy, USD: 1.00 to 10000.00, cents' })
  @IsDecimalString({ min: '1.00', max: '10000.00', maxScale: 2 })
  credit!: string;
}

export class TopUpPriceDto {
  @ApiProperty({ example: '100.00' }) credit!: string;
  @ApiProperty({
    example: '85.00',
    description:
      'What POST /v1/me/top-ups would charge now: credit × the best rate, half-up to cents',
  })
  price!: string;
  @ApiProperty({ example: 'USD' }) currency!: 'USD';
  @ApiProperty({ type: ActivePromotionDto, nullable: true })
  promotion!: ActivePromotionDto | null;
}
