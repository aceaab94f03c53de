import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { checkBody } from '../common/http/fast-check.js';
import { CurrentAccountId, CurrentActor, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import {
  AUTHORIZE_SHAPE,
  AuthorizeDto,
  AuthorizeResultDto,
  CreateTokenDto,
  TokenDto,
  TokenPageDto,
  TokenWithKeyDto,
  UpdateTokenDto,
} from './dto/token.dto.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TokensService } from './tokens.service.js';

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/accounts/:accountId/tokens')
export class AdminTokensController {
  constructor(@Inject(TokensService) private readonly tokens: TokensService) {}

  @Get()
  @ApiOkResponse({ type: TokenPageDto })
  list(@Param('accountId') accountId: string, @Query() q: ListQueryDto): Promise<Page<TokenDto>> {
    return this.tokens.list(accountId, q.limit, q.cursor);
  }

  @Post()
  @ApiCreatedResponse({ type: TokenWithKeyDto, description: 'key is shown only here' })
  create(
    @Param('accountId') accountId: string,
    @Body() dto: CreateTokenDto,
    @CurrentActor() actor: string,
  ): Promise<TokenWithKeyDto> {
    return this.tokens.create(accountId, dto, 'admin', actor);
  }
}

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me/tokens')
export class MyTokensController {
  constructor(@Inject(TokensService) private readonly tokens: TokensService) {}

  @Get()
  @ApiOkResponse({ type: TokenPageDto })
  list(@CurrentAccountId() accountId: string, @Query() q: ListQueryDto): Promise<Page<TokenDto>> {
    return this.tokens.list(accountId, q.limit, q.cursor);
  }

  @Post()
  @ApiCreatedResponse({ type: TokenWithKeyDto, description: 'key is shown only here' })
  create(
    @CurrentAccountId() accountId: string,
    @Body() dto: CreateTokenDto,
  ): Promise<TokenWithKeyDto> {
    return this.tokens.create(accountId, dto, 'customer');
  }

  @Patch(':id')
  @ApiOkResponse({ type: TokenDto })
  update(
    @CurrentAccountId() accountId: string,
    @Param('id') id: string,
    @Body() dto: UpdateTokenDto,
  ): Promise<TokenDto> {
    return this.tokens.update(accountId, id, dto, 'customer');
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOkResponse({
    type: TokenDto,
    description: 'The token, now revoked; its row and history stay',
  })
  revoke(@CurrentAccountId() accountId: string, @Param('id') id: string): Promise<TokenDto> {
    return this.tokens.revoke(accountId, id, 'customer');
  }
}

@ApiTags('gateway')
@ApiBearerAuth()
@Roles('gateway')
@Controller('v1/gateway')
export class GatewayController {
  constructor(
    @Inject(TokensService) private readonly tokens: TokensService,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  @Post('authorize')
  @HttpCode(200)
  @ApiOkResponse({ type: AuthorizeResultDto })
  @ApiBody({ type: AuthorizeDto })
  async authorize(@Body() body: unknown): Promise<AuthorizeResultDto> {
    // Called before every gateway request: a plain valid body skips class-validator.
    const dto = await checkBody(body, AUTHORIZE_SHAPE, AuthorizeDto);
    const answer = await this.tokens.authorize(dto);
    this.metrics.authorize.inc({ allowed: String(answer.allowed), reason: answer.reason ?? '' });
    return answer;
  }
}
