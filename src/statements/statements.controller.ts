import { Controller, Get, Header, Inject, Param, Query, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import { CurrentAccountId, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { LedgerEntryDto, LedgerPageDto } from './dto/ledger-entry.dto.js';
import { StatementDto } from './dto/statement.dto.js';
import {
  UsageExportQueryDto,
  UsageItemDto,
  UsagePageDto,
  UsageQueryDto,
  UsageSummaryDto,
  UsageSummaryQueryDto,
} from './dto/usage-view.dto.js';
import { USAGE_CSV_COLUMNS } from './statements.mapper.js';
import { StatementsService } from './statements.service.js';
import { UsageViewsService } from './usage-views.service.js';

const CSV_DOC =
  `CSV (RFC 4180, UTF-8, CRLF), newest first, streamed. Header: ${USAGE_CSV_COLUMNS.join(',')}. ` +
  'charge keeps every digit stored; images counts images of charged events (1 when the event gave none); ' +
  "a token name starting with =, +, -, @ gets a leading ' so spreadsheets do not run it.";
const PERIOD_DOC = 'Calendar month in UTC, YYYY-MM; not after the current month';

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me')
export class MyStatementsController {
  constructor(
    @Inject(StatementsService) private readonly statements: StatementsService,
    @Inject(UsageViewsService) private readonly usage: UsageViewsService,
  ) {}

  @Get('ledger')
  @ApiOkResponse({ type: LedgerPageDto })
  ledger(
    @CurrentAccountId() accountId: string,
    @Query() q: ListQueryDto,
  ): Promise<Page<LedgerEntryDto>> {
    return this.statements.ledger(accountId, q.limit, q.cursor);
  }

  @Get('usage')
  @ApiOkResponse({ type: UsagePageDto })
  listUsage(
    @CurrentAccountId() accountId: string,
    @Query() q: UsageQueryDto,
  ): Promise<Page<UsageItemDto>> {
    return this.usage.list(accountId, q);
  }

  @Get('usage/export')
  @Header('Cache-Control', 'no-store')
  @ApiProduces('text/csv')
  @ApiOkResponse({ description: CSV_DOC, schema: { type: 'string' } })
  exportUsage(
    @CurrentAccountId() accountId: string,
    @Query() q: UsageExportQueryDto,
  ): Promise<StreamableFile> {
    return this.usage.exportCsv(accountId, q);
  }

  @Get('usage/summary')
  @ApiOkResponse({ type: UsageSummaryDto })
  summarizeUsage(
    @CurrentAccountId() accountId: string,
    @Query() q: UsageSummaryQueryDto,
  ): Promise<UsageSummaryDto> {
    return this.usage.summary(accountId, q);
  }

  @Get('statements/:period')
  @ApiParam({ name: 'period', example: '2026-11', description: PERIOD_DOC })
  @ApiOkResponse({ type: StatementDto })
  statement(
    @CurrentAccountId() accountId: string,
    @Param('period') period: string,
  ): Promise<StatementDto> {
    return this.statements.statement(accountId, period);
  }
}

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/accounts/:accountId')
export class AdminStatementsController {
  constructor(
    @Inject(StatementsService) private readonly statements: StatementsService,
    @Inject(UsageViewsService) private readonly usage: UsageViewsService,
  ) {}

  @Get('ledger')
  @ApiOkResponse({ type: LedgerPageDto })
  ledger(
    @Param('accountId') accountId: string,
    @Query() q: ListQueryDto,
  ): Promise<Page<LedgerEntryDto>> {
    return this.statements.ledger(accountId, q.limit, q.cursor);
  }

  @Get('usage')
  @ApiOkResponse({ type: UsagePageDto })
  listUsage(
    @Param('accountId') accountId: string,
    @Query() q: UsageQueryDto,
  ): Promise<Page<UsageItemDto>> {
    return this.usage.list(accountId, q);
  }

  @Get('usage/export')
  @Header('Cache-Control', 'no-store')
  @ApiProduces('text/csv')
  @ApiOkResponse({ description: CSV_DOC, schema: { type: 'string' } })
  exportUsage(
    @Param('accountId') accountId: string,
    @Query() q: UsageExportQueryDto,
  ): Promise<StreamableFile> {
    return this.usage.exportCsv(accountId, q);
  }

  @Get('usage/summary')
  @ApiOkResponse({ type: UsageSummaryDto })
  summarizeUsage(
    @Param('accountId') accountId: string,
    @Query() q: UsageSummaryQueryDto,
  ): Promise<UsageSummaryDto> {
    return this.usage.summary(accountId, q);
  }

  @Get('statements/:period')
  @ApiParam({ name: 'period', example: '2026-11', description: PERIOD_DOC })
  @ApiOkResponse({ type: StatementDto })
  statement(
    @Param('accountId') accountId: string,
    @Param('period') period: string,
  ): Promise<StatementDto> {
    return this.statements.statement(accountId, period);
  }
}
