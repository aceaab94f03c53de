import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpResponse } from '../../bench/lib/load.js';
import { sleep } from '../../bench/lib/stats.js';
import { errText } from './env.js';
import type { Target } from './service.js';

// ---- the gateway simulator ----------------------------------------------------------------------

/** How a resender's attempts went (usage deliveries, authorizes, releases). */
export interface RetryStats {
  attempts: number;
  retries: number;
  networkErrors: number;
  down: number;
  http5xx: number;
  http409: number;
}

export const noRetries = (): RetryStats => ({
  attempts: 0,
  retries: 0,
  networkErrors: 0,
  down: 0,
  http5xx: 0,
  http409: 0,
});

export interface RetryOptions {
  giveUpMs: number;
  max409: number;
}

/** A definitive answer, and whether an earlier attempt of the same call failed. */
interface Definitive {
  res: HttpResponse;
  failedBefore: boolean;
}

/**
 * The gateway's resend policy: POST until a definitive answer, a 2xx or a 4xx other than 409.
 * Connection errors, timeouts, a down service, 5xx and 409 are retried after a short backoff.
 */
export abstract class Resender<S extends RetryStats> {
  readonly failures: string[] = [];
  readonly samples: string[] = [];
  private readonly auth: string;

  protected constructor(
    gatewayKey: string,
    readonly stats: S,
    private readonly retry: RetryOptions,
  ) {
    this.auth = `Bearer ${gatewayKey}`;
  }

  protected fail(m: string): void {
    if (this.failures.length < 50) this.failures.push(m);
    else if (this.failures.length === 50) this.failures.push('… more failures not shown');
  }

  protected sample(m: string): void {
    if (this.samples.length < 10) this.samples.push(m.slice(0, 300));
  }

  /** null when it gave up (a failure is recorded); `label` names the call in messages. */
  protected async post(
    target: Target,
    path: string,
    body: string | undefined,
    label: string,
  ): Promise<Definitive | null> {
    const headers: OutgoingHttpHeaders =
      body === undefined
        ? { authorization: this.auth }
        : {
            authorization: this.auth,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          };
    const started = Date.now();
    let failedBefore = false;
    let conflicts = 0;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        this.stats.retries++;
        await sleep(Math.min(500, 10 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
      }
      if (Date.now() - started > this.retry.giveUpMs) {
        this.fail(`${target.name}: gave up on ${label}… after ${this.retry.giveUpMs} ms`);
        return null;
      }
      const client = target.client();
      if (!client) {
        this.stats.down++;
        failedBefore = true;
        continue;
      }
      this.stats.attempts++;
      let res: HttpResponse;
      try {
        res = await client.request('POST', path, headers, body);
      } catch (e) {
        this.stats.networkErrors++;
        failedBefore = true;
        this.sample(`network (${target.name}): ${errText(e)}`);
        continue;
      }
      if (res.status >= 500 || res.status === 0) {
        this.stats.http5xx++;
        failedBefore = true;
        this.sample(`HTTP ${res.status} (${target.name}): ${res.body}`);
        continue;
      }
      if (res.status === 409) {
        this.stats.http409++;
        this.sample(`HTTP 409 (${target.name}) for ${label}: ${res.body}`);
        if (++conflicts >= this.retry.max409) {
          this.fail(`${label}: 409 ${conflicts} times: ${res.body.slice(0, 200)}`);
          return null;
        }
        failedBefore = true;
        continue;
      }
      return { res, failedBefore };
    }
  }
}
