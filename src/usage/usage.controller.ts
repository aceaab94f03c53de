import { Body, Controller, HttpCode, Inject, Post, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { Roles } from '../auth/principal.js';
import { BATCH_BODY_LIMIT, BodyLimit } from '../common/http/body.interceptor.js';
import { checkBody, passes } from '../common/http/fast-check.js';
import { findUnstorable, SkipHygiene } from '../common/http/request-hygiene.interceptor.js';
import { flattenValidationErrors, validationError } from '../common/http/validation.js';
import {
  ArchivedIngestResponseDto,
  BatchResponseDto,
  IngestResponseDto,
  UsageBatchDto,
  USAGE_EVENT_SHAPE,
  UsageEventDto,
} from './dto/usage-event.dto.js';
import { CheckedEvent, UsageIngestService } from './usage-ingest.service.js';

@ApiTags('gateway')
@ApiBearerAuth()
@Roles('gateway')
@Controller('v1/usage-events')
export class UsageController {
  constructor(@Inject(UsageIngestService) private readonly ingest: UsageIngestService) {}

  @Post()
  @ApiCreatedResponse({
    type: IngestResponseDto,
    description: '201 recorded; 200 with duplicate: true for a replay',
  })
  @ApiBody({ type: UsageEventDto })
  async ingestOne(
    @Body() body: unknown,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<IngestResponseDto | ArchivedIngestResponseDto> {
    // The hot path: a plain valid event skips class-transformer and class-validator.
    const dto = await checkBody(body, USAGE_EVENT_SHAPE, UsageEventDto);
    const { status, body: answer } = await this.ingest.ingestOne(dto);
    res.status(status);
    return answer;
  }

  @Post('batch')
  @HttpCode(200)
  @BodyLimit(BATCH_BODY_LIMIT)
  // Each event is checked on its own in checkEvent, so one bad event does not sink the batch.
  @SkipHygiene()
  @ApiBody({ type: UsageBatchDto })
  @ApiOkResponse({ type: BatchResponseDto, description: 'One result per event, in input order' })
  async ingestBatch(@Body() body: unknown): Promise<BatchResponseDto> {
    // Only the envelope is checked here; each event is validated on its own, so one bad
    // event is rejected and the rest go through.
    const events = checkEnvelope(body);
    return this.ingest.ingestBatch(await Promise.all(events.map(checkEvent)));
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

async function checkEvent(raw: unknown): Promise<CheckedEvent> {
  const requestId =
    raw && typeof raw === 'object' && typeof (raw as { requestId?: unknown }).requestId === 'string'
      ? (raw as { requestId: string }).requestId
      : null;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      ok: false,
      requestId,
      error: validationError([{ field: 'event', message: 'event must be an object' }]),
    };
  }
  const unstorable = findUnstorable(raw);
  if (unstorable.length > 0) {
    return {
      ok: false,
      requestId: requestId && findUnstorable(requestId).length === 0 ? requestId : null,
      error: validationError(unstorable),
    };
  }
  if (passes(raw, USAGE_EVENT_SHAPE)) return { ok: true, event: raw as UsageEventDto };
  const event = plainToInstance(UsageEventDto, raw);
  const errors = await validate(event, {
    whitelist: true,
    forbidNonWhitelisted: true,
    validationError: { target: false, value: false },
  });
  if (errors.length > 0) {
    return { ok: false, requestId, error: validationError(flattenValidationErrors(errors)) };
  }
  return { ok: true, event };
}
