import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { generateSecret, hashSecret, keyPrefix } from '../auth/secrets.js';
import { DomainError, notFound } from '../common/errors/domain-error.js';
import { formatAmount } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { Account, AccountsRepository } from './accounts.repository.js';
import {
  AccountDto,
  AccountWithKeyDto,
  CreateAccountDto,
  MeDto,
  UpdateAccountDto,
} from './dto/account.dto.js';

export const toAccountDto = (a: Account): AccountDto => ({
  id: a.id,
  name: a.name,
  email: a.email,
  status: a.status,
  balance: formatAmount(a.balance),
  held: formatAmount(a.held),
  available: formatAmount(a.balance.minus(a.held)),
  creditLimit: formatAmount(a.creditLimit),
  currency: 'USD',
  consoleKeyPrefix: a.consoleKeyPrefix,
  createdAt: a.createdAt.toISOString(),
  updatedAt: a.updatedAt.toISOString(),
});

export const toMeDto = (a: Account): MeDto => ({
  id: a.id,
  name: a.name,
  email: a.email,
  status: a.status,
  balance: formatAmount(a.balance),
  held: formatAmount(a.held),
  available: formatAmount(a.balance.minus(a.held)),
  creditLimit: formatAmount(a.creditLimit),
  currency: 'USD',
});

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
  update(id: string, dto: UpdateAccountDto, actor: string): Promise<Account> {
    return this.audit.change(actor, 'account.update', async (em) => {
      const before = await this.get(id, em);
      const a = await this.repo.update(id, dto, em);
      if (!a) throw notFound('account');
      return {
        result: a,
        target: `account:${id}`,
        before: toAccountDto(before),
        after: toAccountDto(a),
      };
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
