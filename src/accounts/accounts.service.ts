import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { generateSecret, hashSecret, keyPrefix } from '../auth/secrets.js';
import { DomainError, notFound } from '../common/errors/domain-error.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { toAccountDto, toMeDto } from './accounts.mapper.js';
import { Account, AccountsRepository } from './accounts.repository.js';
import {
  AccountDto,
  AccountWithKeyDto,
  CreateAccountDto,
  MeDto,
  UpdateAccountDto,
} from './dto/account.dto.js';

@Injectable()
export class AccountsService {
  constructor(
    @Inject(AccountsRepository) private readonly repo: AccountsRepository,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  /** An admin's account creation, with its audit entry (never the console key). */
  createAudited(dto: CreateAccountDto, actor: string): Promise<AccountWithKeyDto> {
    return this.audit.change(actor, 'account.create', async (em) => {
      const created = await this.create(dto, em);
      // The entry shows the account as admins read it (console key prefix only, never the key).
      const after = await this.get(created.id, em);
      return { result: created, target: `account:${created.id}`, after: toAccountDto(after) };
    });
  }

  /**
   * The console key is returned here and never again: only its hash is stored. With `em`, the
   * account is created in the caller's transaction (console sign-up creates its login with it).
   */
  async create(dto: CreateAccountDto, em?: EntityManager): Promise<AccountWithKeyDto> {
    const consoleKey = generateSecret('ck_');
    const account = await this.repo.insert(
      {
        name: dto.name,
        email: dto.email ?? null,
        keyHash: hashSecret(consoleKey),
        keyPrefix: keyPrefix(consoleKey),
      },
      em,
    );
    return { ...toAccountDto(account), consoleKey };
  }

  async get(id: string, em?: EntityManager): Promise<Account> {
    const a = await this.repo.findById(id, em);
    if (!a) throw notFound('account');
    return a;
  }

  /** The account as admins read it. */
  async getDto(id: string): Promise<AccountDto> {
    return toAccountDto(await this.get(id));
  }

  /** The account as its customer reads it; with `em`, read in the caller's transaction. */
  async getMe(id: string, em?: EntityManager): Promise<MeDto> {
    return toMeDto(await this.get(id, em));
  }

  /**
   * A suspended account reads everything and changes nothing: its customer's token changes,
   * top-ups and redemptions answer 403 account_suspended.
   */
  async assertActive(id: string): Promise<Account> {
    const a = await this.get(id);
    if (a.status === 'suspended')
      throw new DomainError('account_suspended', 'this account is suspended and cannot change');
    return a;
  }

  async list(limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<AccountDto>> {
    const rows = await this.repo.listPage(limit, decodeCursor(cursor, ['timestamp', 'uuid']));
    return toPage(rows, limit, (a) => [a.cursorAt, a.id], toAccountDto);
  }

  /** Name, status or credit limit, with the change's audit entry in the same transaction. */
  update(id: string, dto: UpdateAccountDto, actor: string): Promise<AccountDto> {
    return this.audit.change(actor, 'account.update', async (em) => {
      const before = await this.get(id, em);
      const a = await this.repo.update(id, dto, em);
      if (!a) throw notFound('account');
      const after = toAccountDto(a);
      return { result: after, target: `account:${id}`, before: toAccountDto(before), after };
    });
  }

  rotateConsoleKey(id: string, actor: string): Promise<AccountWithKeyDto> {
    const consoleKey = generateSecret('ck_');
    return this.audit.change(actor, 'account.rotate_console_key', async (em) => {
      const before = await this.get(id, em);
      const a = await this.repo.replaceConsoleKey(
        id,
        hashSecret(consoleKey),
        keyPrefix(consoleKey),
        em,
      );
      if (!a) throw notFound('account');
      // The audit log shows which key prefix replaced which, never a key.
      return {
        result: { ...toAccountDto(a), consoleKey },
        target: `account:${id}`,
        before: { consoleKeyPrefix: before.consoleKeyPrefix },
        after: { consoleKeyPrefix: a.consoleKeyPrefix },
      };
    });
  }

  findIdByConsoleKeyHash(hash: string): Promise<string | null> {
    return this.repo.findIdByConsoleKeyHash(hash);
  }
}
