import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { conflict, invalid, notFound } from '../common/errors/domain-error.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { AuditService } from '../audit/audit.service.js';
import { seedOnce } from '../database/seed.js';
import { CreateGroupDto, GroupDto, UpdateGroupDto } from './dto/group.dto.js';
import { toGroupDto } from './groups.mapper.js';
import { Group, GroupsRepository } from './groups.repository.js';

@Injectable()
export class GroupsService implements OnModuleInit {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(GroupsRepository) private readonly repo: GroupsRepository,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  async onModuleInit(): Promise<void> {
    await seedOnce(this.ds, 'groups.v1', async (em) => {
      await this.repo.insert(
        {
          name: 'default',
          ratio: '1.0',
          description: 'Default group',
          selectable: true,
          isDefault: true,
        },
        em,
      );
      await this.repo.insert(
        {
          name: 'image2Enterprise',
          ratio: '1.2',
          description: 'Capacity-priority enterprise group',
          selectable: true,
          isDefault: false,
        },
        em,
      );
    });
  }

  async list(limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<GroupDto>> {
    const rows = await this.repo.listPage(limit, decodeCursor(cursor, ['timestamp', 'name']));
    return toPage(rows, limit, (g) => [g.cursorAt, g.name], toGroupDto);
  }

  /** The group, or null when there is none (a database failure still throws). */
  find(name: string): Promise<Group | null> {
    return this.repo.findByName(name);
  }

  async get(name: string): Promise<Group> {
    const g = await this.repo.findByName(name);
    if (!g) throw notFound(`group ${name}`);
    return g;
  }

  /** The group as admins read it. */
  async getDto(name: string): Promise<GroupDto> {
    return toGroupDto(await this.get(name));
  }

  async getDefault(): Promise<Group> {
    const g = await this.repo.findDefault();
    if (!g) throw notFound('default group');
    return g;
  }

  async create(dto: CreateGroupDto, actor: string): Promise<GroupDto> {
    return this.ds.transaction(async (em) => {
      if (dto.isDefault) await this.repo.clearDefault(em);
      const g = await this.repo.insert(
        {
          name: dto.name,
          ratio: dto.ratio,
          description: dto.description ?? '',
          selectable: dto.selectable ?? false,
          isDefault: dto.isDefault ?? false,
        },
        em,
      );
      if (!g) throw conflict(`group ${dto.name} already exists`);
      await this.audit.record(
        {
          actor,
          action: 'group.create',
          target: `group:${g.name}`,
          before: null,
          after: toGroupDto(g),
        },
        em,
      );
      return toGroupDto(g);
    });
  }

  async update(name: string, dto: UpdateGroupDto, actor: string): Promise<GroupDto> {
    if (dto.isDefault === false) {
      throw invalid('isDefault', 'cannot be unset; make another group the default instead');
    }
    return this.ds.transaction(async (em) => {
      const before = await this.repo.findByName(name, em);
      if (!before) throw notFound(`group ${name}`);
      if (dto.isDefault) await this.repo.clearDefault(em);
      const g = await this.repo.update(name, dto, em);
      if (!g) throw notFound(`group ${name}`);
      await this.audit.record(
        {
          actor,
          action: 'group.update',
          target: `group:${name}`,
          before: toGroupDto(before),
          after: toGroupDto(g),
        },
        em,
      );
      return toGroupDto(g);
    });
  }

  async delete(name: string, actor: string): Promise<void> {
    const result = await this.ds.transaction(async (em) => {
      const before = await this.repo.findByName(name, em);
      const outcome = await this.repo.delete(name, em);
      if (outcome === 'deleted' && before) {
        await this.audit.record(
          {
            actor,
            action: 'group.delete',
            target: `group:${name}`,
            before: toGroupDto(before),
            after: null,
          },
          em,
        );
      }
      return outcome;
    });
    switch (result) {
      case 'deleted':
        return;
      case 'not_found':
        throw notFound(`group ${name}`);
      case 'is_default':
        throw conflict(`group ${name} is the default group; make another group the default first`);
      case 'in_use':
        throw conflict(`group ${name} is used by API tokens; move or revoke them first`);
    }
  }
}
