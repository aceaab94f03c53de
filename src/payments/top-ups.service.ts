import { Inject, Injectable, Logger } from '@nestjs/common';
import type Stripe from 'stripe';
import { DataSource } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { DomainError, invalid, notFound } from '../common/errors/domain-error.js';
import { fingerprint } from '../common/http/canonical-json.js';
import { formatAmount, money } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { CreateTopUpDto, TopUpDto } from './dto/top-up.dto.js';
import { STRIPE_MIN_CHARGE, topUpPrice, toStripeCents } from './payments.math.js';
import { PromotionsService } from './promotions.service.js';
import { StripeProvider } from './stripe.provider.js';
import { toAdminTopUpDto, toTopUpDto } from './top-ups.mapper.js';
import { TopUp, TopUpsRepository } from './top-ups.repository.js';

/** Pending top-ups an account may have at once (each one a Checkout Session waiting). */
export const MAX_PENDING_TOP_UPS = 5;

@Injectable()
export class TopUpsService {
  private readonly logger = new Logger('TopUps');

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(TopUpsRepository) private readonly repo: TopUpsRepository,
    @Inject(PromotionsService) private readonly promotions: PromotionsService,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(StripeProvider) private readonly stripe: StripeProvider,
  ) {}

  /**
   * Prices the credit with the best promotion, stores the top-up (pending) and only then asks
   * Stripe for a Checkout Session, so every session Stripe knows has a row here to credit. The
   * Stripe idempotency key makes a retried create return the same session, never a second one.
   *
   * With an `Idempotency-Key`, the same key and body answer the same top-up (`replayed`), and
   * another body under the key is 409. The key check, the pending count and the insert run
   * under a per-account lock, so concurrent creates can neither pass the limit of
   * MAX_PENDING_TOP_UPS nor store two top-ups under one key (the unique index backs this).
   */
  async create(
    accountId: string,
    idempotencyKey: string | null,
    dto: CreateTopUpDto,
  ): Promise<{ topUp: TopUpDto; replayed: boolean }> {
    await this.accounts.assertActive(accountId);
    const client = this.stripe.client;
    if (client === null) {
      throw new DomainError(
        'payments_not_configured',
        'payments are not configured (STRIPE_SECRET_KEY is not set)',
      );
    }
    const credit = money(dto.credit);
    // "100", "100.0" and "100.00" are the same request.
    const requestHash = idempotencyKey === null ? null : fingerprint({ credit: credit.toFixed() });
    const promotion = await this.promotions.bestForTopUp(credit);
    const price = topUpPrice(credit, promotion?.rate ?? null);
    if (price.lt(STRIPE_MIN_CHARGE)) {
      throw invalid(
        'credit',
        `the price after promotion (${formatAmount(price)}) is below the 0.50 USD card payment minimum`,
      );
    }
    const claimed = await this.ds.transaction(async (em) => {
      await this.repo.lockAccountTopUps(accountId, em);
      if (idempotencyKey !== null) {
        const stored = await this.repo.findByIdempotencyKey(accountId, idempotencyKey, em);
        if (stored) {
          if (stored.requestHash !== requestHash) {
            throw new DomainError(
              'idempotency_conflict',
              'Idempotency-Key was already used with a different body',
            );
          }
          return { topUp: stored, replayed: true };
        }
      }
      if ((await this.repo.countPending(accountId, em)) >= MAX_PENDING_TOP_UPS) {
        throw new DomainError(
          'too_many_pending',
          `this account already has ${MAX_PENDING_TOP_UPS} pending top-ups: pay or let one expire first`,
        );
      }
      const topUp = await this.repo.insertPending(
        {
          accountId,
          credit,
          price,
          promotion: promotion && {
            id: promotion.id,
            name: promotion.name,
            rate: promotion.rate.toFixed(),
          },
          idempotencyKey,
          requestHash,
        },
        em,
      );
      return { topUp, replayed: false };
    });
    if (claimed.replayed)
      return { topUp: toTopUpDto(await this.replay(client, claimed.topUp)), replayed: true };

    const topUp = claimed.topUp;
    let session: { id: string; url: string | null };
    try {
      session = await this.checkoutSession(client, topUp);
    } catch (err) {
      await this.repo.markCheckoutFailed(topUp.id);
      const e = err as { type?: string; message?: string };
      this.logger.warn(
        `Checkout Session for top-up ${topUp.id} failed: ${e.type ?? 'error'}: ${e.message ?? String(err)}`,
      );
      throw new DomainError(
        'service_unavailable',
        `the payment provider could not start checkout; top-up ${topUp.id} is closed as failed and nothing was charged`,
      );
    }
    const stored = await this.repo.attachCheckout(topUp.id, session.id, session.url);
    if (!stored) throw notFound('top-up');
    return { topUp: toTopUpDto(stored), replayed: false };
  }

  /**
   * A replayed create: the stored top-up. While its first request is still creating the
   * Checkout Session, asks Stripe with the same idempotency key, which answers that same
   * session; a failure here changes nothing (the first request decides the top-up's fate).
   */
  private async replay(client: Stripe, topUp: TopUp): Promise<TopUp> {
    if (topUp.checkoutUrl !== null || topUp.status !== 'pending') return topUp;
    try {
      const session = await this.checkoutSession(client, topUp);
      return (
        (await this.repo.attachCheckout(topUp.id, session.id, session.url)) ??
        (await this.repo.findById(topUp.id)) ??
        topUp
      );
    } catch {
      const now = await this.repo.findById(topUp.id);
      if (now !== null && (now.checkoutUrl !== null || now.status !== 'pending')) return now;
      throw new DomainError(
        'service_unavailable',
        `the payment provider could not be reached; retry with the same Idempotency-Key for top-up ${topUp.id}`,
      );
    }
  }

  private checkoutSession(client: Stripe, topUp: TopUp): Promise<Stripe.Checkout.Session> {
    const base = this.stripe.publicBaseUrl;
    const { accountId } = topUp;
    return client.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: [
          {
            price_data: {
              currency: 'usd',
              unit_amount: toStripeCents(topUp.price),
              product_data: { name: `Prepaid credit $${formatAmount(topUp.credit)}` },
            },
            quantity: 1,
          },
        ],
        client_reference_id: topUp.id,
        metadata: { topUpId: topUp.id, accountId },
        // Also on the PaymentIntent (and so its charge): lets a refund find its top-up.
        payment_intent_data: { metadata: { topUpId: topUp.id, accountId } },
        success_url: `${base}/top-ups/${topUp.id}?checkout=success&session_id={CHECKOUT_SESSION_ID}`,
        cancel_url: `${base}/top-ups/${topUp.id}?checkout=cancelled`,
      },
      { idempotencyKey: `topup-${topUp.id}` },
    );
  }

  async list(accountId: string, limit = DEFAULT_LIMIT, cursor?: string): Promise<Page<TopUpDto>> {
    const rows = await this.repo.listPage(
      accountId,
      limit,
      decodeCursor(cursor, ['timestamp', 'uuid']),
    );
    return toPage(rows, limit, (t) => [t.cursorAt, t.id], toTopUpDto);
  }

  /** Admin view of an account's top-ups: 404 for an unknown account. */
  async listForAccount(
    accountId: string,
    limit = DEFAULT_LIMIT,
    cursor?: string,
  ): Promise<Page<TopUpDto>> {
    await this.accounts.get(accountId);
    const rows = await this.repo.listPage(
      accountId,
      limit,
      decodeCursor(cursor, ['timestamp', 'uuid']),
    );
    return toPage(rows, limit, (t) => [t.cursorAt, t.id], toAdminTopUpDto);
  }

  /** 404 when the top-up does not exist, 403 when it belongs to another account. */
  async getOwned(accountId: string, id: string): Promise<TopUpDto> {
    const t = await this.repo.findById(id);
    if (!t) throw notFound('top-up');
    if (t.accountId !== accountId)
      throw new DomainError('forbidden', 'top-up belongs to another account');
    return toTopUpDto(t);
  }
}
