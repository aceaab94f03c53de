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
import type { Request } from 'express';
import type Stripe from 'stripe';
import { Public } from '../auth/principal.js';
import { DomainError } from '../common/errors/domain-error.js';
import { validationError } from '../common/http/validation.js';
import { WebhookAckDto } from './dto/webhook.dto.js';
import { StripeProvider } from './stripe.provider.js';
import { WebhookService } from './webhook.service.js';

@ApiTags('stripe')
@Controller('v1/stripe')
export class WebhookController {
  constructor(
    @Inject(StripeProvider) private readonly stripe: StripeProvider,
    @Inject(WebhookService) private readonly webhooks: WebhookService,
  ) {}

  @Post('webhook')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stripe webhook endpoint',
    description:
      'Called by Stripe, with no API key: the Stripe-Signature header over the raw body authenticates it. ' +
      'Handles checkout.session.completed / async_payment_succeeded (credit once, when the amount equals the price; ' +
      'otherwise needs_review), async_payment_failed and expired (close a pending top-up) and charge.refunded ' +
      '(debit credit × cash refunded ÷ price, cumulatively). Each event id is processed at most once; other types ' +
      'are recorded and ignored.',
  })
  @ApiHeader({ name: 'Stripe-Signature', required: true })
  @ApiOkResponse({ type: WebhookAckDto })
  @ApiBadRequestResponse({
    description: 'Missing or invalid signature, or a tampered body: nothing changes',
  })
  @ApiServiceUnavailableResponse({
    description: 'payments_not_configured: STRIPE_WEBHOOK_SECRET is not set',
  })
  async receive(
    @Req() req: RawBodyRequest<Request>,
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
    let event: Stripe.Event;
    try {
      event = this.stripe.constructEvent(req.rawBody, signature);
    } catch {
      // Bad, stale or forged signature, or a body that is not the one signed.
      throw validationError([
        {
          field: 'Stripe-Signature',
          message: 'signature does not match the body and the webhook secret',
        },
      ]);
    }
    const result = await this.webhooks.handle(event);
    return { received: true, duplicate: result.duplicate, outcome: result.outcome };
  }
}
