import type { HttpResponse } from '../../bench/lib/load.js';
import { Dec } from './env.js';
import type { PlannedEvent } from './plan.js';
import { noRetries, Resender, type RetryOptions, type RetryStats } from './resender.js';
import type { Target } from './service.js';

// ---- the gateway simulator: usage deliveries ----------------------------------------------------

export interface GatewayStats extends RetryStats {
  deliveries: number;
  /** Answers "duplicate" (an earlier delivery or attempt had already recorded the event). */
  duplicateAnswers: number;
  /** Events whose answer was "duplicate" after an attempt of the same delivery failed. */
  recoveredAfterFailure: number;
}

interface SingleAnswer {
  requestId: string;
  outcome: string;
  reason: string | null;
  charge: string;
  duplicate: boolean;
}

interface BatchAnswer {
  results: {
    requestId: string | null;
    outcome: string;
    charge?: string;
    reason?: string;
    error?: unknown;
  }[];
}

/**
 * Sends each delivery of usage events until it gets a definitive answer (see Resender), as
 * the gateway does. Every answer is checked against the planned outcome and charge.
 */
export class Gateway extends Resender<GatewayStats> {
  /** Per request id: answers that recorded it anew (must never exceed 1). */
  readonly newAnswers = new Map<string, number>();
  /** Per target: events it recorded anew (answered charged/skipped, not duplicate). */
  readonly newByTarget = new Map<string, number>();

  constructor(gatewayKey: string, o: RetryOptions = { giveUpMs: 180_000, max409: 20 }) {
    super(
      gatewayKey,
      { deliveries: 0, ...noRetries(), duplicateAnswers: 0, recoveredAfterFailure: 0 },
      o,
    );
  }

  /** One delivery of `events` (a batch when asked, else exactly one event) to `target`. */
  async deliver(target: Target, events: PlannedEvent[], asBatch: boolean): Promise<void> {
    if (!asBatch && events.length !== 1) throw new Error('a single delivery has one event');
    this.stats.deliveries++;
    const path = asBatch ? '/v1/usage-events/batch' : '/v1/usage-events';
    const body = asBatch ? `{"events":[${events.map((e) => e.json).join(',')}]}` : events[0].json;
    const answer = await this.post(target, path, body, events[0].requestId);
    if (!answer) return;
    const { res, failedBefore } = answer;
    if (res.status < 200 || res.status >= 300) {
      this.fail(`${target.name} ${path} → ${res.status}: ${res.body.slice(0, 300)}`);
      return;
    }
    if (asBatch) this.checkBatch(target, events, res, failedBefore);
    else this.checkSingle(target, events[0], res, failedBefore);
  }

  private answered(
    target: Target,
    e: PlannedEvent,
    duplicate: boolean,
    failedBefore: boolean,
  ): void {
    if (duplicate) {
      this.stats.duplicateAnswers++;
      if (failedBefore) this.stats.recoveredAfterFailure++;
      return;
    }
    this.newByTarget.set(target.name, (this.newByTarget.get(target.name) ?? 0) + 1);
    const n = (this.newAnswers.get(e.requestId) ?? 0) + 1;
    this.newAnswers.set(e.requestId, n);
    if (n > 1) this.fail(`${e.requestId} was recorded anew by ${n} answers`);
  }

  private compare(
    e: PlannedEvent,
    outcome: string,
    charge: string | undefined,
    reason: string | null | undefined,
    where: string,
  ): void {
    if (outcome !== e.outcome)
      this.fail(`${where} ${e.requestId}: outcome ${outcome}, expected ${e.outcome} (${e.json})`);
    if (charge === undefined || !new Dec(charge).eq(e.charge))
      this.fail(
        `${where} ${e.requestId}: charge ${charge}, expected ${e.charge.toFixed()} (${e.json})`,
      );
    if ((reason ?? null) !== e.reason)
      this.fail(`${where} ${e.requestId}: reason ${reason}, expected ${e.reason} (${e.json})`);
  }

  private checkSingle(
    target: Target,
    e: PlannedEvent,
    res: HttpResponse,
    failedBefore: boolean,
  ): void {
    let a: SingleAnswer;
    try {
      a = JSON.parse(res.body) as SingleAnswer;
    } catch {
      this.fail(`${target.name}: unparsable answer ${res.status}: ${res.body.slice(0, 200)}`);
      return;
    }
    const duplicate = res.status === 200;
    if (a.duplicate !== duplicate || (res.status !== 200 && res.status !== 201))
      this.fail(`${e.requestId}: HTTP ${res.status} with duplicate=${String(a.duplicate)}`);
    if (a.requestId !== e.requestId) this.fail(`${e.requestId}: answer names ${a.requestId}`);
    this.compare(e, a.outcome, a.charge, a.reason, `single@${target.name}`);
    this.answered(target, e, a.duplicate, failedBefore);
  }

  private checkBatch(
    target: Target,
    events: PlannedEvent[],
    res: HttpResponse,
    failedBefore: boolean,
  ): void {
    let a: BatchAnswer;
    try {
      a = JSON.parse(res.body) as BatchAnswer;
    } catch {
      this.fail(`${target.name}: unparsable batch answer: ${res.body.slice(0, 200)}`);
      return;
    }
    if (res.status !== 200 || !Array.isArray(a.results) || a.results.length !== events.length) {
      this.fail(
        `${target.name}: batch answer ${res.status} with ${a.results?.length} results for ${events.length}`,
      );
      return;
    }
    events.forEach((e, i) => {
      const r = a.results[i];
      if (r.requestId !== e.requestId)
        this.fail(`batch result ${i}: ${r.requestId}, expected ${e.requestId}`);
      if (r.outcome === 'rejected') {
        this.fail(`batch@${target.name} ${e.requestId} rejected: ${JSON.stringify(r.error)}`);
        return;
      }
      const duplicate = r.outcome === 'duplicate';
      // A duplicate shows what the first delivery was charged (its outcome is not repeated).
      this.compare(
        e,
        duplicate ? e.outcome : r.outcome,
        r.charge,
        duplicate ? e.reason : r.reason,
        `batch@${target.name}`,
      );
      this.answered(target, e, duplicate, failedBefore);
    });
  }
}
