import { Inject, Injectable } from '@nestjs/common';
import type { Decimal } from 'decimal.js';
import { DataSource, EntityManager } from 'typeorm';
import { money } from '../common/money/money.js';
import { CursorKey } from '../common/pagination/pagination.js';
import { sqlRows } from '../database/sql.js';
import { PlaceResult, toPlaceResult } from '../holds/holds.repository.js';

export interface Token {
  id: string;
  accountId: string;
  name: string;
  group: string;
  keyPrefix: string;
  status: 'active' | 'revoked';
  expiresAt: Date | null;
  spendLimit: Decimal | null;
  spent: Decimal;
  /** Money its active holds set aside (expired ones excluded even before a sweep). */
  held: Decimal;
  allowedModels: string[] | null;
  /** The limits an admin set: the customer may tighten within them, never loosen. */
  adminLimits: AdminLimits | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  cursorAt: string;
}

export interface AdminLimits {
  group?: string;
  spendLimit?: string;
  expiresAt?: string;
  allowedModels?: string[];
}

interface TokenRow {
  id: string;
  account_id: string;
  name: string;
  group_name: string;
  key_prefix: string;
  status: 'active' | 'revoked';
  expires_at: Date | null;
  spend_limit: string | null;
  spent: string;
  held: string;
  allowed_models: string[] | null;
  admin_limits: AdminLimits | null;
  created_at: Date;
  last_used_at: Date | null;
  cursor_at: string;
}

/**
 * A token's or account's holds that expired but were not swept yet: they no longer count.
 * Read in expiry order, so the planner takes holds_active_account_expiry, which yields it, and
 * not the account's every active hold through holds_active_account (as authorize_facts does).
 */
export const expiredHeld = (accountCol: string, tokenCol?: string): string =>
  `COALESCE((SELECT sum(e.amount) FROM (SELECT h.amount FROM holds h WHERE h.account_id = ${accountCol}` +
  (tokenCol ? ` AND h.token_id = ${tokenCol}` : '') +
  ` AND h.status = 'active' AND h.expires_at <= now() ORDER BY h.expires_at) e), 0)`;

const COLUMNS = `id, account_id, name, group_name, key_prefix, status, expires_at, spend_limit, spent,
  held - ${expiredHeld('api_tokens.account_id', 'api_tokens.id')} AS held, allowed_models, admin_limits,
  created_at, last_used_at, created_at::text AS cursor_at`;

const toToken = (r: TokenRow): Token => ({
  id: r.id,
  accountId: r.account_id,
  name: r.name,
  group: r.group_name,
  keyPrefix: r.key_prefix,
  status: r.status,
  expiresAt: r.expires_at,
  spendLimit: r.spend_limit === null ? null : money(r.spend_limit),
  spent: money(r.spent),
  held: money(r.held),
  allowedModels: r.allowed_models,
  adminLimits: r.admin_limits,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  cursorAt: r.cursor_at,
});

/** Everything authorize needs about a key, read in one round trip. */
export interface AuthorizeFacts {
  tokenId: string;
  accountId: string;
  status: 'active' | 'revoked';
  expiresAt: Date | null;
  spendLimit: Decimal | null;
  spent: Decimal;
  held: Decimal;
  allowedModels: string[] | null;
  group: string;
  ratio: Decimal;
  accountStatus: 'active' | 'suspended';
  balance: Decimal;
  accountHeld: Decimal;
  creditLimit: Decimal;
  /** The model's current price version; null when it is not priced (yet). */
  priceVersionId: string | null;
  /** The hold already placed for the request id asked about, if any (any token's). */
  hold: { tokenId: string; status: 'active' | 'closed'; amount: Decimal; expiresAt: Date } | null;
  /** Whether a usage event with the request id was already recorded. */
  requestRecorded: boolean;
  /** When a hold was asked for with the facts (HoldAttempt) and tried: how it went. */
  placement: PlaceResult | null;
}

/**
 * A hold to place with the facts, in the same round trip: its amount as computed from the
 * price version and group ratio named here. authorize_facts places it only when both are
 * still the ones in force and every check authorize makes before a hold passes.
 */
export interface HoldAttempt {
  amount: Decimal;
  priceVersionId: string;
  ratio: Decimal;
  ttlSeconds: number;
}

export interface TokenPatch {
  name?: string;
  group?: string;
  expiresAt?: string | null;
  spendLimit?: string | null;
  allowedModels?: string[] | null;
}

@Injectable()
export class TokensRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insert(
    t: {
      accountId: string;
      name: string;
      group: string;
      keyHash: string;
      keyPrefix: string;
      expiresAt: string | null;
      spendLimit: string | null;
      allowedModels: string[] | null;
      adminLimits: AdminLimits | null;
    },
    em: EntityManager = this.ds.manager,
  ): Promise<Token> {
    const rows = await sqlRows<TokenRow>(
      em,
      `INSERT INTO api_tokens (account_id, name, group_name, key_hash, key_prefix, expires_at, spend_limit, allowed_models,
         admin_limits)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      [
        t.accountId,
        t.name,
        t.group,
        t.keyHash,
        t.keyPrefix,
        t.expiresAt,
        t.spendLimit,
        t.allowedModels,
        t.adminLimits === null ? null : JSON.stringify(t.adminLimits),
      ],
    );
    return toToken(rows[0]);
  }

  async findById(id: string): Promise<Token | null> {
    const rows = await sqlRows<TokenRow>(
      this.ds,
      `SELECT ${COLUMNS} FROM api_tokens WHERE id = $1`,
      [id],
    );
    return rows[0] ? toToken(rows[0]) : null;
  }

  async listPage(accountId: string, limit: number, after: CursorKey | null): Promise<Token[]> {
    const rows: TokenRow[] = after
      ? await this.ds.query(
          `SELECT ${COLUMNS} FROM api_tokens WHERE account_id = $1 AND (created_at, id) < ($2::timestamptz, $3::uuid)
           ORDER BY created_at DESC, id DESC LIMIT $4`,
          [accountId, after[0], after[1], limit + 1],
        )
      : await this.ds.query(
          `SELECT ${COLUMNS} FROM api_tokens WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
          [accountId, limit + 1],
        );
    return rows.map(toToken);
  }

  /**
   * Updates an active token that has not expired; null when it is revoked or expired (no
   * change revives one, and the WHERE closes the race with an expiry or a revoke).
   */
  async updateActive(id: string, patch: TokenPatch): Promise<Token | null> {
    const rows = await sqlRows<TokenRow>(
      this.ds,
      `UPDATE api_tokens SET
         name = COALESCE($2, name),
         group_name = COALESCE($3, group_name),
         expires_at = CASE WHEN $4::boolean THEN $5::timestamptz ELSE expires_at END,
         spend_limit = CASE WHEN $6::boolean THEN $7::numeric ELSE spend_limit END,
         allowed_models = CASE WHEN $8::boolean THEN $9::text[] ELSE allowed_models END,
         updated_at = now()
       WHERE id = $1 AND status = 'active' AND (expires_at IS NULL OR expires_at > now()) RETURNING ${COLUMNS}`,
      [
        id,
        patch.name ?? null,
        patch.group ?? null,
        patch.expiresAt !== undefined,
        patch.expiresAt ?? null,
        patch.spendLimit !== undefined,
        patch.spendLimit ?? null,
        patch.allowedModels !== undefined,
        patch.allowedModels ?? null,
      ],
    );
    return rows[0] ? toToken(rows[0]) : null;
  }

  /** Revokes once; a second revoke returns the token as it is. */
  async revoke(id: string): Promise<Token | null> {
    const rows = await sqlRows<TokenRow>(
      this.ds,
      `UPDATE api_tokens SET status = 'revoked', revoked_at = COALESCE(revoked_at, now()), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id],
    );
    return rows[0] ? toToken(rows[0]) : null;
  }

  /**
   * Reads each key's token with its account, group, the model's price in force and the
   * request's hold (authorize_facts, migration 1764830000000), for several authorizes in one
   * statement: one round trip and one commit for all of them (AuthorizeQueue, group commit).
   * With a HoldAttempt, the same call also places the hold when nothing stands in its way.
   * The calls run in the order given, in one transaction: the caller orders them by account,
   * so the row locks of concurrent groups are taken in one order. One answer per call, in
   * order; null for a key that does not exist.
   */
  async authorizeFacts(calls: AuthorizeCall[]): Promise<(AuthorizeFacts | null)[]> {
    const rows = await sqlRows<AuthorizeRow>(
      this.ds,
      `SELECT c.ord, f.* FROM unnest($1::bpchar[], $2::varchar[], $3::varchar[], $4::numeric[],
         $5::bigint[], $6::numeric[], $7::int[]) WITH ORDINALITY AS c(k, m, r, a, v, g, t, ord)
       CROSS JOIN LATERAL authorize_facts(c.k, c.m, c.r, c.a, c.v, c.g, c.t) f`,
      [
        calls.map((c) => c.keyHash),
        calls.map((c) => c.model),
        calls.map((c) => c.requestId),
        calls.map((c) => c.attempt?.amount.toFixed() ?? null),
        calls.map((c) => c.attempt?.priceVersionId ?? null),
        calls.map((c) => c.attempt?.ratio.toFixed() ?? null),
        calls.map((c) => c.attempt?.ttlSeconds ?? null),
      ],
      'tokens_authorize_facts',
    );
    const answers: (AuthorizeFacts | null)[] = calls.map(() => null);
    for (const r of rows) {
      const i = Number(r.ord) - 1;
      answers[i] = toFacts(r, calls[i]);
    }
    return answers;
  }
}

/** One authorize's question to authorize_facts. */
export interface AuthorizeCall {
  keyHash: string;
  model: string;
  requestId: string | null;
  attempt: HoldAttempt | null;
}

interface AuthorizeRow {
  ord: string;
  id: string;
  account_id: string;
  status: 'active' | 'revoked';
  expires_at: Date | null;
  spend_limit: string | null;
  spent: string;
  held: string;
  allowed_models: string[] | null;
  group_name: string;
  ratio: string;
  account_status: 'active' | 'suspended';
  balance: string;
  account_held: string;
  credit_limit: string;
  price_version_id: string | null;
  hold_token_id: string | null;
  hold_active: boolean | null;
  hold_amount: string | null;
  hold_expires_at: Date | null;
  request_recorded: boolean;
  place_locked: boolean | null;
  placed: boolean | null;
  balance_ok: boolean | null;
  spend_ok: boolean | null;
  usable: boolean | null;
  fresh: boolean | null;
  place_balance: string | null;
  place_held: string | null;
  place_created_at: Date | null;
  place_expires_at: Date | null;
  place_cursor_at: string | null;
}

const toFacts = (
  r: AuthorizeRow,
  { model, requestId, attempt }: AuthorizeCall,
): AuthorizeFacts => ({
  tokenId: r.id,
  accountId: r.account_id,
  status: r.status,
  expiresAt: r.expires_at,
  spendLimit: r.spend_limit === null ? null : money(r.spend_limit),
  spent: money(r.spent),
  held: money(r.held),
  allowedModels: r.allowed_models,
  group: r.group_name,
  ratio: money(r.ratio),
  accountStatus: r.account_status,
  balance: money(r.balance),
  accountHeld: money(r.account_held),
  creditLimit: money(r.credit_limit),
  priceVersionId: r.price_version_id,
  hold:
    r.hold_token_id !== null && r.hold_amount !== null && r.hold_expires_at !== null
      ? {
          tokenId: r.hold_token_id,
          status: r.hold_active ? 'active' : 'closed',
          amount: money(r.hold_amount),
          expiresAt: r.hold_expires_at,
        }
      : null,
  requestRecorded: r.request_recorded,
  placement:
    attempt && requestId !== null && r.place_locked !== null
      ? toPlaceResult(
          {
            locked: r.place_locked,
            placed: r.placed ?? false,
            balance_ok: r.balance_ok,
            spend_ok: r.spend_ok,
            usable: r.usable,
            fresh: r.fresh,
            balance: r.place_balance,
            held: r.place_held,
            created_at: r.place_created_at,
            expires_at: r.place_expires_at,
            cursor_at: r.place_cursor_at,
          },
          {
            requestId,
            accountId: r.account_id,
            tokenId: r.id,
            model,
            amount: attempt.amount,
          },
        )
      : null,
});
