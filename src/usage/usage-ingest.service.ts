import { Inject, Injectable } from '@nestjs/common';
import type { DomainError } from '../common/errors/domain-error.js';
import {
  ArchivedIngestResponseDto,
  BatchResponseDto,
  IngestResponseDto,
  UsageEventDto,
} from './dto/usage-event.dto.js';
import { IngestQueue } from './ingest-queue.js';
import {
  toArchivedIngestResponseDto,
  toBatchResultDto,
  toIngestResponseDto,
} from './usage.mapper.js';
import { EventOutcome, incoming } from './usage.service.js';

/** A batch's event as the controller checked it: valid, or rejected with why. */
export type CheckedEvent =
  { ok: true; event: UsageEventDto } | { ok: false; requestId: string | null; error: DomainError };

/** A single event's answer: 201 recorded, 200 a replay (archived ones included). */
export interface IngestOneResult {
  status: 200 | 201;
  body: IngestResponseDto | ArchivedIngestResponseDto;
}

/** What the usage endpoints call: events go through IngestQueue, answers come back as DTOs. */
@Injectable()
export class UsageIngestService {
  constructor(@Inject(IngestQueue) private readonly queue: IngestQueue) {}

  /** Throws the event's error when it is rejected: a single post fails as a whole. */
  async ingestOne(event: UsageEventDto): Promise<IngestOneResult> {
    const outcome = await this.queue.submit(incoming(event));
    if (outcome.kind === 'rejected') throw outcome.error;
    if (outcome.kind === 'archived') {
      return { status: 200, body: toArchivedIngestResponseDto(outcome) };
    }
    return {
      status: outcome.duplicate ? 200 : 201,
      body: toIngestResponseDto(outcome.record, outcome.duplicate),
    };
  }

  /** One result per event, in input order; only the valid ones are written. */
  async ingestBatch(checked: CheckedEvent[]): Promise<BatchResponseDto> {
    const written = await this.queue.submitAll(
      checked.flatMap((c) => (c.ok ? [incoming(c.event)] : [])),
    );
    // Valid events take their outcomes in order; invalid ones keep their rejection.
    let next = 0;
    const results = checked.map((c): EventOutcome =>
      c.ok ? written[next++] : { kind: 'rejected', requestId: c.requestId, error: c.error },
    );
    return { results: results.map(toBatchResultDto) };
  }
}
