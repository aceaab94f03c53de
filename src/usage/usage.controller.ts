import { Body, Controller, HttpCode, Inject, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import type { Response } from 'express';
import { Roles } from '../auth/principal.js';
import { flattenValidationErrors, validationError } from '../common/http/validation.js';
import {
  BatchResponseDto,
  IngestResponseDto,
  UsageBatchDto,
  UsageEventDto,
} from './dto/usage-event.dto.js';
import { IngestQueue } from './ingest-queue.js';
import { toBatchResult, toIngestResponse } from './usage.mapper.js';
import { EventOutcome, incoming, UsageService } from './usage.service.js';

@ApiTags('gateway')
@ApiBearerAuth()
@Roles('gateway')
@Controller('v1/usage-events')
export class UsageController {
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
  @ApiOkResponse({ type: BatchResponseDto, description: 'One result per event, in input order' })
  async ingestBatch(@Body() dto: UsageBatchDto): Promise<BatchResponseDto> {
    // Each event is validated on its own, so one bad event is rejected and the rest go through.
    const checked = await Promise.all(dto.events.map(checkEvent));
    const valid = checked.flatMap((c, i) => (c.ok ? [{ i, item: incoming(c.event) }] : []));
    const outcomes = await this.usage.ingest(valid.map((v) => v.item));
    const results: EventOutcome[] = checked.map((c) =>
      c.ok ? (undefined as unknown as EventOutcome) : c.outcome,
    );
    valid.forEach((v, k) => (results[v.i] = outcomes[k]));
    return { results: results.map(toBatchResult) };
  }
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
