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
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CurrentActor, Roles } from '../auth/principal.js';
import { ListQueryDto, Page } from '../common/pagination/pagination.js';
import { CreateGroupDto, GroupDto, GroupPageDto, UpdateGroupDto } from './dto/group.dto.js';
import { GroupsService } from './groups.service.js';
import { ApiOkResponse, ApiCreatedResponse } from '@nestjs/swagger';

@ApiTags('admin: groups')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/groups')
export class GroupsController {
  constructor(@Inject(GroupsService) private readonly groups: GroupsService) {}

  @Get()
  @ApiOkResponse({ type: GroupPageDto })
  list(@Query() q: ListQueryDto): Promise<Page<GroupDto>> {
    return this.groups.list(q.limit, q.cursor);
  }

  @Post()
  @ApiCreatedResponse({ type: GroupDto })
  create(@Body() dto: CreateGroupDto, @CurrentActor() actor: string): Promise<GroupDto> {
    return this.groups.create(dto, actor);
  }

  @Get(':name')
  @ApiOkResponse({ type: GroupDto })
  get(@Param('name') name: string): Promise<GroupDto> {
    return this.groups.getDto(name);
  }

  @Patch(':name')
  @ApiOkResponse({ type: GroupDto })
  update(
    @Param('name') name: string,
    @Body() dto: UpdateGroupDto,
    @CurrentActor() actor: string,
  ): Promise<GroupDto> {
    return this.groups.update(name, dto, actor);
  }

  @Delete(':name')
  @HttpCode(204)
  delete(@Param('name') name: string, @CurrentActor() actor: string): Promise<void> {
    return this.groups.delete(name, actor);
  }
}
