import { Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentAccountId, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { HoldDto, HoldPageDto, ReleaseResultDto } from './dto/hold.dto.js';
import { HoldsService } from './holds.service.js';

@ApiTags('gateway')
@ApiBearerAuth()
@Roles('gateway')
@Controller('v1/gateway/holds')
export class GatewayHoldsController {
  constructor(@Inject(HoldsService) private readonly holds: HoldsService) {}

  @Post(':requestId/release')
  @HttpCode(200)
  @ApiOkResponse({
    type: ReleaseResultDto,
    description:
      'Gives back the money held for work the gateway abandoned; idempotent; 404 if unknown',
  })
  release(@Param('requestId') requestId: string): Promise<ReleaseResultDto> {
    return this.holds.release(requestId);
  }
}

@ApiTags('customer')
@ApiBearerAuth()
@Roles('customer')
@Controller('v1/me/holds')
export class MyHoldsController {
  constructor(@Inject(HoldsService) private readonly holds: HoldsService) {}

  @Get()
  @ApiOkResponse({ type: HoldPageDto, description: 'Active holds, newest first' })
  list(@CurrentAccountId() accountId: string, @Query() q: ListQueryDto): Promise<Page<HoldDto>> {
    return this.holds.listActive(accountId, q.limit, q.cursor);
  }
}

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/accounts/:accountId/holds')
export class AdminHoldsController {
  constructor(@Inject(HoldsService) private readonly holds: HoldsService) {}

  @Get()
  @ApiOkResponse({ type: HoldPageDto, description: 'Active holds, newest first' })
  list(@Param('accountId') accountId: string, @Query() q: ListQueryDto): Promise<Page<HoldDto>> {
    return this.holds.listActive(accountId, q.limit, q.cursor);
  }
}
