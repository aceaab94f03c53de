import { Body, Controller, HttpCode, Inject, Logger, Post, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import type { Response } from 'express';
import { Roles } from '../auth/principal.js';
import { findUnstorable, SkipHygiene } from '../common/http/request-hygiene.interceptor.js';
import { flattenValidationErrors, validationError } from '../common/http/validation.js';
import {
  BatchResponseDto,
  IngestResponseDto,
  UsageBatchDto,
  UsageEventDto,
} from './dto/usage-event.dto.js';
import { IngestQueue } from './ingest-queue.js';
import { toBatchResult, toIngestResponse } from './usage.mapper.js';
import { EventOutcome, IncomingEvent, incoming, UsageService } from './usage.service.js';
import { DomainError } from '../common/errors/domain-error.js';

@ApiTags('gateway')
@ApiBearerAuth()
@Roles('gateway')
@Controller('v1/usage-events')
export class UsageController {
  private readonly logger = new Logger(UsageController.name);

  constructor(
    @Inject(IngestQueue) private readonly queue: IngestQueue,
    @Inject(UsageService) private readonly usage: UsageService,
  ) {}

  @Post()
  @ApiCreatedResponse({
    type: IngestResponseDto,
    description: '201 recorded; 200 with duplicate: true for a replay',
  })
  async ingestOne(
    @Body() dto: UsageEventDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<IngestResponseDto> {
    const outcome = await this.queue.submit(incoming(dto));
    if (outcome.kind === 'rejected') throw outcome.error;
    res.status(outcome.duplicate ? 200 : 201);
    return toIngestResponse(outcome.record, outcome.duplicate);
  }

  @Post('batch')
  @HttpCode(200)
  // Each event is checked on its own in checkEvent, so one bad event does not sink the batch.
  @SkipHygiene()
  @ApiBody({ type: UsageBatchDto })
  @ApiOkResponse({ type: BatchResponseDto, description: 'One result per event, in input order' })
  async ingestBatch(@Body() body: unknown): Promise<BatchResponseDto> {
    // Only the envelope is checked here; each event is validated on its own, so one bad
    // event is rejected and the rest go through.
    const events = checkEnvelope(body);
    const checked = await Promise.all(events.map(checkEvent));
    const valid = checked.flatMap((c, i) => (c.ok ? [{ i, item: incoming(c.event) }] : []));
    const outcomes = await this.ingestIsolated(valid.map((v) => v.item));
    const results: EventOutcome[] = checked.map((c) =>
      c.ok ? (undefined as unknown as EventOutcome) : c.outcome,
    );
    valid.forEach((v, k) => (results[v.i] = outcomes[k]));
    return { results: results.map(toBatchResult) };
  }

  /**
   * The whole list in one transaction; if that fails for a reason no event was rejected for,
   * each event on its own, so one event the database refuses does not sink the others.
   */
  private async ingestIsolated(items: IncomingEvent[]): Promise<EventOutcome[]> {
    try {
      return await this.usage.ingest(items);
    } catch (err) {
      if (items.length <= 1) throw err;
      this.logger.error(
        `batch of ${items.length} failed as a whole, retrying one by one: ${String(err)}`,
      );
      return Promise.all(
        items.map((item) =>
          this.usage.ingest([item]).then(
            ([o]) => o,
            (): EventOutcome => ({
              kind: 'rejected',
              requestId: item.event.requestId,
              error: new DomainError(
                'internal_error',
                'this event could not be recorded; send it again',
              ),
            }),
          ),
        ),
      );
    }
  }
}

/** `{ events: [1..1000 items] }` and nothing else; the events themselves are checked one by one. */
function checkEnvelope(body: unknown): unknown[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw validationError([{ field: 'body', message: 'body must be an object { events: [...] }' }]);
  }
  const details = Object.keys(body)
    .filter((k) => k !== 'events')
    .map((k) => ({ field: k, message: `property ${k} should not exist` }));
  const events = (body as { events?: unknown }).events;
  if (!Array.isArray(events)) details.push({ field: 'events', message: 'events must be an array' });
  else if (events.length < 1 || events.length > 1000) {
    details.push({ field: 'events', message: 'events must contain 1 to 1000 events' });
  }
  if (details.length > 0) throw validationError(details);
  return events as unknown[];
}

type Checked = { ok: true; event: UsageEventDto } | { ok: false; outcome: EventOutcome };

async function checkEvent(raw: unknown): Promise<Checked> {
  const requestId =
    raw && typeof raw === 'object' && typeof (raw as { requestId?: unknown }).requestId === 'string'
      ? (raw as { requestId: string }).requestId
      : null;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      ok: false,
      outcome: {
        kind: 'rejected',
        requestId,
        error: validationError([{ field: 'event', message: 'event must be an object' }]),
      },
    };
  }
  const unstorable = findUnstorable(raw);
  if (unstorable.length > 0) {
    return {
      ok: false,
      outcome: {
        kind: 'rejected',
        requestId: requestId && findUnstorable(requestId).length === 0 ? requestId : null,
        error: validationError(unstorable),
      },
    };
  }
  const event = plainToInstance(UsageEventDto, raw);
  const errors = await validate(event, {
    whitelist: true,
    forbidNonWhitelisted: true,
    validationError: { target: false, value: false },
  });
  if (errors.length > 0) {
    return {
      ok: false,
      outcome: {
        kind: 'rejected',
        requestId,
        error: validationError(flattenValidationErrors(errors)),
      },
    };
  }
  return { ok: true, event };
}
