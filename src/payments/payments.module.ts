import { Module } from '@nestjs/common';

/** Promotions, top-ups through Stripe Checkout, the Stripe webhook and price quotes. */
@Module({})
export class PaymentsModule {}
