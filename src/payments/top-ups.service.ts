import { Inject, Injectable, Logger } from '@nestjs/common';
import { AccountsService } from '../accounts/accounts.service.js';
import { DomainError, invalid, notFound } from '../common/errors/domain-error.js';
import { formatAmount, formatRatio, money } from '../common/money/money.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import { CreateTopUpDto, TopUpDto } from './dto/top-up.dto.js';
import { STRIPE_MIN_CHARGE, topUpPrice, toStripeCents } from './payments.math.js';
import { PromotionsService } from './promotions.service.js';
import { StripeProvider } from './stripe.provider.js';
import { TopUp, TopUpsRepository } from './top-ups.repository.js';

export const toTopUpDto = (t: TopUp): TopUpDto => ({
  id: t.id,
  accountId: t.accountId,
  status: t.status,
  credit: formatAmount(t.credit),
  price: formatAmount(t.price),
  currency: 'USD',
  promotion: t.promotion && {
    id: t.promotion.id,
    name: t.promotion.name,
    rate: formatRatio(money(t.promotion.rate)),
  },
  checkoutUrl: t.checkoutUrl,
  amountPaid: t.amountPaid === null ? null : formatAmount(t.amountPaid),
  refundedCash: formatAmount(t.refundedCash),
  refundedCredit: formatAmount(t.refundedCredit),
  reviewReason: t.reviewReason,
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
  paidAt: t.paidAt?.toISOString() ?? null,
});

@Injectable()
export class TopUpsService {
  private readonly logger = new Logger('TopUps');

  constructor(
    @Inject(TopUpsRepository) private readonly repo: TopUpsRepository,
    @Inject(PromotionsService) private readonly promotions: PromotionsService,
    @Inject(AccountsService) private readonly accounts: AccountsService,
    @Inject(StripeProvider) private readonly stripe: StripeProvider,
  ) {}

  /**
   * Prices the credit with the best promotion, stores the top-up (pending) and only then asks
   * Stripe for a Checkout Session, so every session Stripe knows has a row here to credit. The
   * idempotency key makes a retried create return the same session, never a second one.
   */
  async create(accountId: string, dto: CreateTopUpDto): Promise<TopUp> {
    await this.accounts.assertActive(accountId);
    const client = this.stripe.client;
    if (client === null) {
      throw new DomainError(
        'payments_not_configured',
        'payments are not configured (STRIPE_SECRET_KEY is not set)',
      );
    }
    const credit = money(dto.credit);
    const promotion = await this.promotions.bestForTopUp(credit);
    const price = topUpPrice(credit, promotion?.rate ?? null);
    if (price.lt(STRIPE_MIN_CHARGE)) {
      throw invalid(
        'credit',
        `the price after promotion (${formatAmount(price)}) is below the 0.50 USD card payment minimum`,
      );
    }
    const topUp = await this.repo.insertPending({
      accountId,
      credit,
      price,
      promotion: promotion && {
        id: promotion.id,
        name: promotion.name,
        rate: promotion.rate.toFixed(),
      },
    });

    const base = this.stripe.publicBaseUrl;
    let session: { id: string; url: string | null };
    try {
      session = await client.checkout.sessions.create(
        {
          mode: 'payment',
          line_items: [
            {
              price_data: {
                currency: 'usd',
                unit_amount: toStripeCents(price),
                product_data: { name: `Prepaid credit $${formatAmount(credit)}` },
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
    return stored;
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
    return this.list(accountId, limit, cursor);
  }

  /** 404 when the top-up does not exist, 403 when it belongs to another account. */
  async getOwned(accountId: string, id: string): Promise<TopUp> {
    const t = await this.repo.findById(id);
    if (!t) throw notFound('top-up');
    if (t.accountId !== accountId)
      throw new DomainError('forbidden', 'top-up belongs to another account');
    return t;
  }
}
