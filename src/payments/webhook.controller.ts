import { Controller, Headers, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { RawBodyRequest } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Public } from '../auth/principal.js';
import { DomainError } from '../common/errors/domain-error.js';
import { SkipHygiene } from '../common/http/request-hygiene.interceptor.js';
import { validationError } from '../common/http/validation.js';
import { parseStripeEvent } from './dto/stripe-event.dto.js';
import { WebhookAckDto } from './dto/webhook.dto.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { StripeProvider } from './stripe.provider.js';
import { WebhookService } from './webhook.service.js';

@ApiTags('stripe')
@Controller('v1/stripe')
export class WebhookController {
  constructor(
    @Inject(StripeProvider) private readonly stripe: StripeProvider,
    @Inject(WebhookService) private readonly webhooks: WebhookService,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  @Post('webhook')
  @Public()
  // The body is Stripe's, signed byte for byte: refusing a NUL somewhere in it would make
  // Stripe retry a genuine event for days. parseStripeEvent and the service check what they use.
  @SkipHygiene()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stripe webhook endpoint',
    description:
      'Called by Stripe, with no API key: the Stripe-Signature header over the raw body authenticates it ' +
      '(refused when dated more than 5 minutes in the past or in the future). ' +
      'Handles checkout.session.completed / async_payment_succeeded (credit once, when the amount equals the price; ' +
      'otherwise needs_review), async_payment_failed and expired (close a pending top-up), charge.refunded ' +
      "(debit credit × cash refunded ÷ price from Stripe's running total; refunds above the amount paid flag " +
      'needs_review and never take more than the credit), charge.refund.updated / refund.updated / refund.failed ' +
      '(a refund failed or canceled gives its credit back once), and charge.dispute.created / funds_withdrawn / ' +
      'closed lost (debit credit × disputed cash ÷ price once, never more than refunds and earlier disputes left, ' +
      'ledger type dispute) and funds_reinstated / closed won or warning_closed (book that debit back once; a ' +
      'dispute won before it was debited is never debited). Each event id is processed at most once; other types ' +
      'are recorded and ignored.',
  })
  @ApiHeader({ name: 'Stripe-Signature', required: true })
  @ApiOkResponse({ type: WebhookAckDto })
  @ApiBadRequestResponse({
    description:
      'Missing or invalid signature, a tampered body, or a signed body that is not a Stripe event ' +
      '(no string id or type, or no data.object for a handled type): nothing changes',
  })
  @ApiServiceUnavailableResponse({
    description: 'payments_not_configured: STRIPE_WEBHOOK_SECRET is not set',
  })
  async receive(
    @Req() req: RawBodyRequest<FastifyRequest>,
    @Headers('stripe-signature') signature: string | undefined,
  ): Promise<WebhookAckDto> {
    if (!this.stripe.webhooksConfigured) {
      throw new DomainError(
        'payments_not_configured',
        'payments are not configured (STRIPE_WEBHOOK_SECRET is not set)',
      );
    }
    if (!signature) {
      throw validationError([
        { field: 'Stripe-Signature', message: 'Stripe-Signature header is required' },
      ]);
    }
    if (!req.rawBody || req.rawBody.length === 0) {
      throw validationError([
        { field: 'body', message: 'a JSON body (the Stripe event) is required' },
      ]);
    }
    let parsed: unknown;
    try {
      parsed = this.stripe.constructEvent(req.rawBody, signature);
    } catch (err) {
      // The SDK parses the body only once the signature is verified: a SyntaxError means
      // signed bytes that are not JSON.
      if (err instanceof SyntaxError) {
        throw validationError([{ field: 'body', message: 'the signed body is not JSON' }]);
      }
      // Bad, stale or forged signature, or a body that is not the one signed.
      throw validationError([
        {
          field: 'Stripe-Signature',
          message: 'signature does not match the body and the webhook secret',
        },
      ]);
    }
    // Signed by Stripe is not the same as shaped like an event: checked before anything is stored.
    const event = parseStripeEvent(parsed);
    const ack = await this.webhooks.handle(event);
    this.metrics.stripeEvents.inc({
      type: event.type,
      outcome: ack.duplicate ? 'duplicate' : ack.outcome,
    });
    return ack;
  }
}
