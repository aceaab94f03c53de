import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import Stripe from 'stripe';
import { AppConfig, StripeConfig } from '../config/app.config.js';

/** Where the SDK sends API calls: Stripe itself, or STRIPE_API_BASE (a local stub, stripe-mock). */
export function stripeClientConfig(apiBase: string | null): Stripe.StripeConfig {
  const config: Stripe.StripeConfig = {
    // Checkout is created while the customer waits; fail fast and let them retry.
    timeout: 20_000,
    // Safe: every create carries an idempotency key.
    maxNetworkRetries: 2,
    telemetry: false,
  };
  if (apiBase === null) return config;
  const url = new URL(apiBase);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    ...config,
    host: url.hostname,
    port: url.port || (protocol === 'http' ? 80 : 443),
    protocol,
  };
}

/**
 * The Stripe SDK behind one injectable, so tests point it at a stub (STRIPE_API_BASE) and
 * nothing else in the service reads Stripe configuration. Secrets never leave this class.
 */
@Injectable()
export class StripeProvider {
  /** null: STRIPE_SECRET_KEY is not set, so no Checkout Session can be created. */
  readonly client: Stripe | null;
  private readonly webhookSecret: string | null;
  readonly publicBaseUrl: string;

  constructor(@Inject(ConfigService) config: ConfigService) {
    const stripe = config.getOrThrow<StripeConfig>('stripe');
    this.client = stripe.secretKey
      ? new Stripe(stripe.secretKey, stripeClientConfig(stripe.apiBase))
      : null;
    this.webhookSecret = stripe.webhookSecret;
    this.publicBaseUrl = config.getOrThrow<AppConfig>('app').publicBaseUrl.replace(/\/+$/, '');
  }

  get webhooksConfigured(): boolean {
    return this.webhookSecret !== null;
  }

  /**
   * Verifies Stripe's signature over the exact bytes received and parses the event. Needs only
   * the webhook secret: verification is a local HMAC check, no API key involved. Throws
   * Stripe's SignatureVerificationError on a bad, stale or missing signature.
   */
  constructEvent(rawBody: Buffer, signature: string): Stripe.Event {
    if (this.webhookSecret === null) throw new Error('STRIPE_WEBHOOK_SECRET is not set');
    return Stripe.webhooks.constructEvent(rawBody, signature, this.webhookSecret);
  }
}
