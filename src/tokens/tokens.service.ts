import { Inject, Injectable } from '@nestjs/common';
import { AccountsService } from '../accounts/accounts.service.js';
import { isUuid } from '../accounts/accounts.repository.js';
import { generateSecret, hashSecret, keyPrefix } from '../auth/secrets.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { DomainError, ErrorDetail, notFound } from '../common/errors/domain-error.js';
import { formatAmount, formatRatio } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { validationError } from '../common/http/validation.js';
import { GroupsService } from '../groups/groups.service.js';
import {
  AuthorizeResultDto,
  CreateTokenDto,
  DenyReason,
  TokenDto,
  TokenWithKeyDto,
  UpdateTokenDto,
} from './dto/token.dto.js';
import { Token, TokensRepository } from './tokens.repository.js';

export const toTokenDto = (t: Token): TokenDto => ({
  id: t.id,
  name: t.name,
  group: t.group,
  keyPrefix: t.keyPrefix,
  status: t.status,
  expiresAt: t.expiresAt?.toISOString() ?? null,
  spendLimit: t.spendLimit === null ? null : formatAmount(t.spendLimit),
  spent: formatAmount(t.spent),
  allowedModels: t.allowedModels,
  createdAt: t.createdAt.toISOString(),
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
});

/** Who is acting on tokens: an admin may use any group, a customer only selectable ones. */
export type TokenActor = 'admin' | 'customer';

@Injectable()
export class TokensService {
  constructor(
    @Inject(TokensRepository) private readonly repo: TokensRepository,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(GroupsService) private readonly groups: GroupsService,
    @Inject(CatalogService) private readonly catalog: CatalogService,
  ) {}

  /** The key is returned here and never again: only its hash is stored. */
  async create(
    accountId: string,
    dto: CreateTokenDto,
    actor: TokenActor,
  ): Promise<TokenWithKeyDto> {
    await this.accounts.get(accountId);
    const group = dto.group ?? (await this.groups.getDefault()).name;
    await this.checkInput({ ...dto, group }, actor);
    const key = generateSecret('sk-');
    const token = await this.repo.insert({
      accountId,
      name: dto.name,
      group,
      keyHash: hashSecret(key),
      keyPrefix: keyPrefix(key),
      expiresAt: dto.expiresAt ?? null,
      spendLimit: dto.spendLimit ?? null,
      allowedModels: dto.allowedModels ?? null,
    });
    return { ...toTokenDto(token), key };
  }

  async list(accountId: string, limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<TokenDto>> {
    await this.accounts.get(accountId);
    const rows = await this.repo.listPage(accountId, limit, decodeCursor(cursor, ['timestamp', 'uuid']));
    return toPage(rows, limit, (t) => [t.cursorAt, t.id], toTokenDto);
  }

  async update(
    accountId: string,
    tokenId: string,
    dto: UpdateTokenDto,
    actor: TokenActor,
  ): Promise<TokenDto> {
    const current = await this.ownedToken(accountId, tokenId);
    if (current.status === 'revoked')
      throw new DomainError('conflict', 'token is revoked and cannot change');
    await this.checkInput(dto, actor);
    const updated = await this.repo.updateActive(tokenId, dto);
    if (!updated) throw new DomainError('conflict', 'token is revoked and cannot change');
    return toTokenDto(updated);
  }

  /** Revoking keeps the row and its history; the key stops working at once. */
  async revoke(accountId: string, tokenId: string): Promise<TokenDto> {
    await this.ownedToken(accountId, tokenId);
    const t = await this.repo.revoke(tokenId);
    if (!t) throw notFound('token');
    return toTokenDto(t);
  }

  /**
   * The gateway's question before each request. Reasons are checked in the contract's order,
   * so the first one that applies is the one reported.
   */
  async authorize(key: string, model: string): Promise<AuthorizeResultDto> {
    const f = await this.repo.authorizeFacts(hashSecret(key), model);
    const deny = (reason: DenyReason): AuthorizeResultDto => ({ allowed: false, reason });
    if (!f) return deny('invalid_key');
    if (f.status === 'revoked') return deny('revoked');
    if (f.expiresAt !== null && f.expiresAt.getTime() <= Date.now()) return deny('expired');
    if (f.accountStatus === 'suspended') return deny('account_suspended');
    if (f.balance.lte(0)) return deny('insufficient_balance');
    if (f.allowedModels !== null && !f.allowedModels.includes(model))
      return deny('model_not_allowed');
    if (!f.modelPriced) return deny('model_not_priced');
    if (f.spendLimit !== null && f.spent.gte(f.spendLimit)) return deny('spend_limit_reached');
    return {
      allowed: true,
      tokenId: f.tokenId,
      accountId: f.accountId,
      group: f.group,
      ratio: formatRatio(f.ratio),
      balance: formatAmount(f.balance),
    };
  }

  /** 404 when the token does not exist, 403 when it belongs to another account. */
  private async ownedToken(accountId: string, tokenId: string): Promise<Token> {
    const t = isUuid(tokenId) ? await this.repo.findById(tokenId) : null;
    if (!t) throw notFound('token');
    if (t.accountId !== accountId)
      throw new DomainError('forbidden', 'token belongs to another account');
    return t;
  }

  private async checkInput(
    dto: { group?: string; allowedModels?: string[] | null },
    actor: TokenActor,
  ): Promise<void> {
    const details: ErrorDetail[] = [];
    if (dto.group !== undefined) {
      const g = await this.groups.get(dto.group).catch(() => null);
      // Customers learn nothing about groups they may not use.
      if (!g || (actor === 'customer' && !g.selectable)) {
        details.push({ field: 'group', message: `group ${dto.group} is not available` });
      }
    }
    if (dto.allowedModels) {
      const priced = await this.catalog.pricedModels(dto.allowedModels);
      dto.allowedModels.forEach((m, i) => {
        if (!priced.has(m))
          details.push({ field: `allowedModels.${i}`, message: `model ${m} is not priced` });
      });
    }
    if (details.length > 0) throw validationError(details);
  }
}
