import type { WebhookAckDto } from './dto/webhook.dto.js';

/** Stripe's answer: received, and whether this event id was processed before. */
export const toWebhookAckDto = (duplicate: boolean, outcome: string): WebhookAckDto => ({
  received: true,
  duplicate,
  outcome,
});
