import { Body, Controller, Get, Inject, Param, Patch, Post, Query, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentAccountId, CurrentActor, Roles } from '../auth/principal.js';
import { IdempotencyKey } from '../common/http/idempotency-key.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { AccountsService } from './accounts.service.js';
import { AdjustmentsService } from './adjustments.service.js';
import {
  AccountDto,
  AccountPageDto,
  AccountWithKeyDto,
  AdjustmentDto,
  CreateAccountDto,
  CreateAdjustmentDto,
  MeDto,
  UpdateAccountDto,
} from './dto/account.dto.js';

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/accounts')
export class AdminAccountsController {
  constructor(
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(AdjustmentsService) private readonly adjustments: AdjustmentsService,
  ) {}

  @Post()
  @ApiCreatedResponse({ type: AccountWithKeyDto, description: 'consoleKey is shown only here' })
  create(@Body() dto: CreateAccountDto, @CurrentActor() actor: string): Promise<AccountWithKeyDto> {
    return this.accounts.createAudited(dto, actor);
  }

  @Get()
  @ApiOkResponse({ type: AccountPageDto })
  list(@Query() q: ListQueryDto): Promise<Page<AccountDto>> {
    return this.accounts.list(q.limit, q.cursor);
  }

  @Get(':id')
  @ApiOkResponse({ type: AccountDto })
  get(@Param('id') id: string): Promise<AccountDto> {
    return this.accounts.getDto(id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: AccountDto })
  update(
    @Param('id') id: string,
    @Body() dto: UpdateAccountDto,
    @CurrentActor() actor: string,
  ): Promise<AccountDto> {
    return this.accounts.update(id, dto, actor);
  }

  @Post(':id/console-key')
  @ApiCreatedResponse({
    type: AccountWithKeyDto,
    description: 'The new consoleKey, shown only here; the old one stops working',
  })
  rotateConsoleKey(
    @Param('id') id: string,
    @CurrentActor() actor: string,
  ): Promise<AccountWithKeyDto> {
    return this.accounts.rotateConsoleKey(id, actor);
  }

  @Post(':id/adjustments')
  @ApiHeader({
    name: 'Idempotency-Key',
    required: true,
    description: 'Replays with the same key return the stored adjustment',
  })
  @ApiCreatedResponse({ type: AdjustmentDto, description: '201 when booked, 200 when replayed' })
  async adjust(
    @Param('id') id: string,
    @IdempotencyKey() idempotencyKey: string | undefined,
    @Body() dto: CreateAdjustmentDto,
    @Res({ passthrough: true }) res: FastifyReply,
    @CurrentActor() actor: string,
  ): Promise<AdjustmentDto> {
    const { adjustment, replayed } = await this.adjustments.create(
      id,
      idempotencyKey,
      dto,
      undefined,
      actor,
    );
    res.status(replayed ? 200 : 201);
    return adjustment;
  }
}

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me')
export class MeController {
  constructor(@Inject(AccountsService) private readonly accounts: AccountsService) {}

  @Get()
  @ApiOkResponse({ type: MeDto })
  me(@CurrentAccountId() accountId: string): Promise<MeDto> {
    return this.accounts.getMe(accountId);
  }
}
