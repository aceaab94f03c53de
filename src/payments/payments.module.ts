import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { CatalogModule } from '../catalog/catalog.module.js';
import { GroupsModule } from '../groups/groups.module.js';
import { LedgerModule } from '../ledger/ledger.module.js';
import { PromotionsController } from './promotions.controller.js';
import { PromotionsRepository } from './promotions.repository.js';
import { PromotionsService } from './promotions.service.js';
import { QuoteController } from './quote.controller.js';
import { QuoteService } from './quote.service.js';
import { StripeEventsRepository } from './stripe-events.repository.js';
import { StripeProvider } from './stripe.provider.js';
import { DisputeEventsService } from './dispute-events.service.js';
import { RefundEventsService } from './refund-events.service.js';
import { StripeDisputesRepository } from './stripe-disputes.repository.js';
import { StripeRefundsRepository } from './stripe-refunds.repository.js';
import { TopUpBooksService } from './top-up-books.service.js';
import { TopUpReviewsService } from './top-up-reviews.service.js';
import {
  AdminTopUpReviewsController,
  AdminTopUpsController,
  MyTopUpsController,
} from './top-ups.controller.js';
import { TopUpsRepository } from './top-ups.repository.js';
import { TopUpsService } from './top-ups.service.js';
import { WebhookController } from './webhook.controller.js';
import { WebhookService } from './webhook.service.js';

/**
 * Promotions, top-ups through Stripe Checkout (with refunds, disputes and the admins' review
 * queue), the Stripe webhook and price quotes.
 */
@Module({
  imports: [LedgerModule, AccountsModule, CatalogModule, GroupsModule],
  controllers: [
    PromotionsController,
    MyTopUpsController,
    AdminTopUpsController,
    AdminTopUpReviewsController,
    WebhookController,
    QuoteController,
  ],
  providers: [
    StripeProvider,
    PromotionsRepository,
    PromotionsService,
    TopUpsRepository,
    TopUpsService,
    StripeEventsRepository,
    StripeRefundsRepository,
    StripeDisputesRepository,
    TopUpBooksService,
    TopUpReviewsService,
    RefundEventsService,
    DisputeEventsService,
    WebhookService,
    QuoteService,
  ],
  exports: [PromotionsService],
})
export class PaymentsModule {}
