import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Roles } from '../auth/principal.js';
import { Page } from '../common/pagination/pagination.js';
import { AuditEntryDto, AuditPageDto, AuditQueryDto } from './audit.dto.js';
import { AuditService } from './audit.service.js';

@ApiTags('admin: audit')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/audit-log')
export class AuditController {
  constructor(@Inject(AuditService) private readonly audit: AuditService) {}

  @Get()
  @ApiOkResponse({ type: AuditPageDto, description: 'Admin changes, newest first' })
  list(@Query() q: AuditQueryDto): Promise<Page<AuditEntryDto>> {
    return this.audit.list(q);
  }
}
