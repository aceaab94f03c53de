import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { AccountsService } from '../accounts/accounts.service.js';
import { isUuid } from '../common/ids.js';
import { generateSecret, hashSecret, keyPrefix } from '../auth/secrets.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { DomainError, ErrorDetail, notFound } from '../common/errors/domain-error.js';
import { money } from '../common/money/money.js';
import { AuditService } from '../audit/audit.service.js';
import { HoldsService } from '../holds/holds.service.js';
import { holdAmountFor } from '../pricing/hold.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { validationError } from '../common/http/validation.js';
import { GroupsService } from '../groups/groups.service.js';
import {
  AuthorizeDto,
  AuthorizeResultDto,
  CreateTokenDto,
  TokenDto,
  TokenWithKeyDto,
  UpdateTokenDto,
} from './dto/token.dto.js';
import {
  toAllowedDto,
  toAuthorizeHoldDto,
  toDeniedDto,
  toTokenDto,
  toTokenWithKeyDto,
} from './tokens.mapper.js';
import { AuthorizeQueue } from './authorize-queue.js';
import { AdminLimits, HoldAttempt, Token, TokensRepository } from './tokens.repository.js';

/** Who is acting on tokens: an admin may use any group, a customer only selectable ones. */
export type TokenActor = 'admin' | 'customer';

/** Keys whose price version and ratio authorize remembers (a hint only: see HoldAttempt). */
const MAX_REMEMBERED_KEYS = 100_000;

@Injectable()
export class TokensService {
  constructor(
    @Inject(TokensRepository) private readonly repo: TokensRepository,
    @Inject(AuthorizeQueue) private readonly authorizeQueue: AuthorizeQueue,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(GroupsService) private readonly groups: GroupsService,
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(HoldsService) private readonly holds: HoldsService,
    @Inject(AuditService) private readonly audit: AuditService,
  ) {}

  /** The key is returned here and never again: only its hash is stored. */
  async create(
    accountId: string,
    dto: CreateTokenDto,
    actor: TokenActor,
    /** The admin key's name, for the audit log, when an admin creates it. */
    adminName?: string,
  ): Promise<TokenWithKeyDto> {
    if (actor === 'customer') await this.accounts.assertActive(accountId);
    else await this.accounts.get(accountId);
    const group = dto.group ?? (await this.groups.getDefault()).name;
    await this.checkInput({ ...dto, group }, actor);
    const key = generateSecret('sk-');
    const row = {
      accountId,
      name: dto.name,
      group,
      keyHash: hashSecret(key),
      keyPrefix: keyPrefix(key),
      expiresAt: dto.expiresAt ?? null,
      spendLimit: dto.spendLimit ?? null,
      allowedModels: dto.allowedModels ?? null,
      adminLimits: actor === 'admin' ? adminLimitsOf(dto) : null,
    };
    const token =
      adminName === undefined
        ? await this.repo.insert(row)
        : await this.audit.change(adminName, 'token.create', async (em) => {
            const t = await this.repo.insert(row, em);
            // The key itself never reaches the audit log: the DTO carries its prefix only.
            return { result: t, target: `token:${t.id}`, after: { accountId, ...toTokenDto(t) } };
          });
    return toTokenWithKeyDto(token, key);
  }

  async list(accountId: string, limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<TokenDto>> {
    await this.accounts.get(accountId);
    const rows = await this.repo.listPage(
      accountId,
      limit,
      decodeCursor(cursor, ['timestamp', 'uuid']),
    );
    return toPage(rows, limit, (t) => [t.cursorAt, t.id], toTokenDto);
  }

  async update(
    accountId: string,
    tokenId: string,
    dto: UpdateTokenDto,
    actor: TokenActor,
  ): Promise<TokenDto> {
    if (actor === 'customer') await this.accounts.assertActive(accountId);
    const current = await this.ownedToken(accountId, tokenId);
    if (current.status === 'revoked')
      throw new DomainError('conflict', 'token is revoked and cannot change');
    if (current.expiresAt !== null && current.expiresAt.getTime() <= Date.now())
      throw new DomainError('conflict', 'token has expired and cannot change');
    if (actor === 'customer') checkWithinAdminLimits(dto, current.adminLimits);
    await this.checkInput(dto, actor);
    const updated = await this.repo.updateActive(tokenId, dto);
    if (!updated)
      throw new DomainError('conflict', 'token is revoked or expired and cannot change');
    return toTokenDto(updated);
  }

  /** Revoking keeps the row and its history; the key stops working at once. */
  async revoke(accountId: string, tokenId: string, actor: TokenActor): Promise<TokenDto> {
    if (actor === 'customer') await this.accounts.assertActive(accountId);
    await this.ownedToken(accountId, tokenId);
    const t = await this.repo.revoke(tokenId);
    if (!t) throw notFound('token');
    return toTokenDto(t);
  }

  /**
   * The gateway's question before each request. Reasons are checked in the contract's order,
   * so the first one that applies is the one reported. With a requestId, an allowed answer
   * holds the request's likely price (HoldsService.place decides atomically).
   */
  async authorize(dto: AuthorizeDto, retried = false): Promise<AuthorizeResultDto> {
    const requestId = dto.requestId ?? null;
    const keyHash = hashSecret(dto.key);
    const attempt = requestId === null ? null : await this.holdAttempt(keyHash, dto);
    const f = await this.authorizeQueue.facts({ keyHash, model: dto.model, requestId, attempt });
    if (!f) return toDeniedDto('invalid_key');
    // Placed with the facts: every check below passed in that statement, on the same facts.
    if (requestId !== null && f.placement?.kind === 'placed') {
      const { hold, balance, held } = f.placement;
      return toAllowedDto(f, balance, held, toAuthorizeHoldDto(requestId, hold));
    }
    if (f.status === 'revoked') return toDeniedDto('revoked');
    if (f.expiresAt !== null && f.expiresAt.getTime() <= Date.now()) return toDeniedDto('expired');
    if (f.accountStatus === 'suspended') return toDeniedDto('account_suspended');
    // A request id names one request: held at most once, and never again once settled.
    if (f.hold?.status === 'active' && f.hold.tokenId === f.tokenId) {
      return toAllowedDto(f, f.balance, f.accountHeld, toAuthorizeHoldDto(requestId ?? '', f.hold));
    }
    if (f.hold || f.requestRecorded) return toDeniedDto('request_settled');
    if (f.balance.minus(f.accountHeld).plus(f.creditLimit).lte(0))
      return toDeniedDto('insufficient_balance');
    if (f.allowedModels !== null && !f.allowedModels.includes(dto.model))
      return toDeniedDto('model_not_allowed');
    if (f.priceVersionId === null) return toDeniedDto('model_not_priced');
    if (f.spendLimit !== null && f.spent.plus(f.held).gte(f.spendLimit))
      return toDeniedDto('spend_limit_reached');
    if (requestId === null) return toAllowedDto(f, f.balance, f.accountHeld, null);

    this.remember(keyHash, dto.model, f.priceVersionId, f.ratio);
    // Tried with the facts and refused there (the amount did not fit, or a race), or not tried
    // (first authorize of this key and model, or the price or ratio changed since): place now.
    let placed = f.placement;
    if (!placed) {
      const price = (await this.catalog.versionsById([f.priceVersionId])).get(f.priceVersionId);
      if (!price) return toDeniedDto('model_not_priced');
      placed = await this.holds.place({
        requestId,
        accountId: f.accountId,
        tokenId: f.tokenId,
        model: dto.model,
        amount: holdAmountFor(
          price,
          { n: dto.n ?? 1, size: dto.size, quality: dto.quality },
          f.ratio,
        ),
      });
    }
    switch (placed.kind) {
      case 'placed':
        return toAllowedDto(
          f,
          placed.balance,
          placed.held,
          toAuthorizeHoldDto(requestId, placed.hold),
        );
      case 'denied':
        if (placed.reason !== 'unusable') return toDeniedDto(placed.reason);
        // The token or account changed since the facts were read: ask again, once.
        return retried ? toDeniedDto('revoked') : this.authorize(dto, true);
      case 'exists':
        // Another authorize with this request id won the race, or its usage arrived.
        return retried ? toDeniedDto('request_settled') : this.authorize(dto, true);
    }
  }

  /**
   * The price version and group ratio of this key's last authorize for the model, per key
   * hash: a hint, never trusted. The hold computed from them goes with the facts query, which
   * places it only if both are still the ones in force (HoldAttempt).
   */
  private readonly lastPrice = new Map<string, { priceVersionId: string; ratio: Decimal }>();

  private async holdAttempt(keyHash: string, dto: AuthorizeDto): Promise<HoldAttempt | null> {
    const last = this.lastPrice.get(`${keyHash} ${dto.model}`);
    if (!last) return null;
    const price = (await this.catalog.versionsById([last.priceVersionId])).get(last.priceVersionId);
    if (!price) return null;
    let amount: Decimal;
    try {
      amount = holdAmountFor(
        price,
        { n: dto.n ?? 1, size: dto.size, quality: dto.quality },
        last.ratio,
      );
    } catch {
      // Whatever holdAmountFor refuses, the usual path below answers as it always did.
      return null;
    }
    return {
      amount,
      priceVersionId: last.priceVersionId,
      ratio: last.ratio,
      ttlSeconds: this.holds.ttlSeconds(),
    };
  }

  private remember(keyHash: string, model: string, priceVersionId: string, ratio: Decimal): void {
    const k = `${keyHash} ${model}`;
    const last = this.lastPrice.get(k);
    if (last && last.priceVersionId === priceVersionId && last.ratio.eq(ratio)) return;
    if (this.lastPrice.size >= MAX_REMEMBERED_KEYS) this.lastPrice.clear();
    this.lastPrice.set(k, { priceVersionId, ratio });
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
      // Only a missing group is the caller's fault; a database failure stays a 500.
      const g = await this.groups.find(dto.group);
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

/** The limits an admin sets when creating a token: each given one becomes the admin's. */
function adminLimitsOf(dto: CreateTokenDto): AdminLimits | null {
  const limits: AdminLimits = {};
  if (dto.group !== undefined) limits.group = dto.group;
  if (dto.spendLimit != null) limits.spendLimit = money(dto.spendLimit).toFixed();
  if (dto.expiresAt != null) limits.expiresAt = new Date(dto.expiresAt).toISOString();
  if (dto.allowedModels != null) limits.allowedModels = dto.allowedModels;
  return Object.keys(limits).length > 0 ? limits : null;
}

/**
 * A customer may tighten what an admin set (a lower limit, an earlier expiry, fewer models)
 * but not loosen or remove it: 403 locked_by_admin, naming the field.
 */
function checkWithinAdminLimits(dto: UpdateTokenDto, limits: AdminLimits | null): void {
  if (!limits) return;
  const locked: ErrorDetail[] = [];
  const lock = (field: string, message: string) => locked.push({ field, message });
  if (limits.group !== undefined && dto.group !== undefined && dto.group !== limits.group)
    lock('group', `group was set by an admin to ${limits.group}`);
  if (limits.spendLimit !== undefined && dto.spendLimit !== undefined) {
    if (dto.spendLimit === null || money(dto.spendLimit).gt(limits.spendLimit))
      lock('spendLimit', `spendLimit was set by an admin: at most ${limits.spendLimit}`);
  }
  if (limits.expiresAt !== undefined && dto.expiresAt !== undefined) {
    if (dto.expiresAt === null || Date.parse(dto.expiresAt) > Date.parse(limits.expiresAt))
      lock('expiresAt', `expiresAt was set by an admin: no later than ${limits.expiresAt}`);
  }
  if (limits.allowedModels !== undefined && dto.allowedModels !== undefined) {
    const allowed = new Set(limits.allowedModels);
    if (dto.allowedModels === null || dto.allowedModels.some((m) => !allowed.has(m)))
      lock(
        'allowedModels',
        `allowedModels was set by an admin: a subset of ${limits.allowedModels.join(', ')}`,
      );
  }
  if (locked.length > 0) {
    throw new DomainError(
      'locked_by_admin',
      `set by an admin; may be tightened, not loosened: ${locked.map((d) => d.field).join(', ')}`,
      locked,
    );
  }
}
