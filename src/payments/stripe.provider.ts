import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import Stripe from 'stripe';
import type { AppConfig } from '../config/app.config.js';

/** How far a webhook signature's timestamp may be from now, either way (Stripe's default). */
export const SIGNATURE_TOLERANCE_S = 300;

/**
 * The signing time of a Stripe-Signature header, read as the SDK reads it (the last `t=`
 * item), or null when it has none.
 */
export function signatureTimestamp(header: string): number | null {
  let t: number | null = null;
  for (const item of header.split(',')) {
    const [k, v] = item.split('=');
    if (k === 't') t = Number.parseInt(v ?? '', 10);
  }
  return t === null || Number.isNaN(t) ? null : t;
}

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

  constructor(@Inject(ConfigService) config: ConfigService<AppConfig, true>) {
    const stripe = config.get('stripe', { infer: true });
    this.client = stripe.secretKey
      ? new Stripe(stripe.secretKey, stripeClientConfig(stripe.apiBase))
      : null;
    this.webhookSecret = stripe.webhookSecret;
    this.publicBaseUrl = config.get('app', { infer: true }).publicBaseUrl.replace(/\/+$/, '');
  }

  get webhooksConfigured(): boolean {
    return this.webhookSecret !== null;
  }

  /**
   * Verifies Stripe's signature over the exact bytes received and parses the event. Needs only
   * the webhook secret: verification is a local HMAC check, no API key involved. Throws
   * Stripe's SignatureVerificationError on a bad, stale or missing signature, and on one dated
   * more than the tolerance in the future (the SDK checks only the past): a signature made
   * with a clock set ahead would otherwise stay replayable for as long as it is ahead.
   */
  constructEvent(rawBody: Buffer, signature: string, now = Date.now()): Stripe.Event {
    if (this.webhookSecret === null) throw new Error('STRIPE_WEBHOOK_SECRET is not set');
    const event = Stripe.webhooks.constructEvent(
      rawBody,
      signature,
      this.webhookSecret,
      SIGNATURE_TOLERANCE_S,
      undefined,
      now,
    );
    const signedAt = signatureTimestamp(signature);
    if (signedAt !== null && signedAt - Math.floor(now / 1000) > SIGNATURE_TOLERANCE_S) {
      throw new Stripe.errors.StripeSignatureVerificationError(
        signature,
        rawBody.toString('utf8'),
        {
          message: 'Timestamp is in the future, outside the tolerance zone',
        },
      );
    }
    return event;
  }
}
