import http from 'node:http';

export interface HttpResponse {
  status: number;
  body: string;
}

/** A keep-alive HTTP/1.1 client for one loopback port. */
export class HttpClient {
  readonly agent: http.Agent;

  constructor(
    private readonly port: number,
    maxSockets: number,
  ) {
    // `timeout` makes the agent honour the server's Keep-Alive hint and drop sockets before
    // the server closes them, so a reused socket is never reset under us.
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      timeout: 60_000,
    });
  }

  /** Sends one request; the body is read when `keepBody` or the status is not 2xx (else drained). */
  request(
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
    body?: string,
    keepBody = true,
  ): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.port, method, path, agent: this.agent, headers },
        (res) => {
          const status = res.statusCode ?? 0;
          if (!keepBody && status >= 200 && status < 300) {
            res.on('end', () => resolve({ status, body: '' }));
            res.on('error', reject);
            res.resume();
            return;
          }
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('end', () => resolve({ status, body: data }));
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error('request timed out after 30 s')));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One request the load generator sends, prepared before the clock runs where possible. */
export interface Job {
  path: string;
  body: string;
  /** Account index per event in the body (1 for a single event). */
  accounts: number[];
  /** Read the response body (to check per-event outcomes, or to sample a response). */
  keepBody: boolean;
}

/** How many of the job's events the response confirms as charged; the rest count as errors. */
export type Checker = (job: Job, res: HttpResponse) => { ok: boolean[]; error?: string };

export interface LoadResult {
  requests: number;
  events: number;
  okEvents: number;
  errorEvents: number;
  errorSamples: string[];
  seconds: number;
  /** Per request, in ms. */
  latencies: number[];
}

class Tally {
  requests = 0;
  events = 0;
  okEvents = 0;
  errorEvents = 0;
  errorSamples: string[] = [];
  latencies: number[] = [];

  constructor(private readonly perAccount: Int32Array) {}

  record(
    job: Job,
    res: HttpResponse | null,
    err: unknown,
    check: Checker,
    latencyMs: number,
  ): void {
    this.requests++;
    this.events += job.accounts.length;
    this.latencies.push(latencyMs);
    if (!res) {
      this.errorEvents += job.accounts.length;
      this.sample(`network: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const { ok, error } = check(job, res);
    for (let i = 0; i < job.accounts.length; i++) {
      if (ok[i]) {
        this.okEvents++;
        this.perAccount[job.accounts[i]]++;
      } else {
        this.errorEvents++;
      }
    }
    if (error) this.sample(error);
  }

  private sample(s: string): void {
    if (this.errorSamples.length < 5) this.errorSamples.push(s.slice(0, 300));
  }

  result(seconds: number): LoadResult {
    return {
      requests: this.requests,
      events: this.events,
      okEvents: this.okEvents,
      errorEvents: this.errorEvents,
      errorSamples: this.errorSamples,
      seconds,
      latencies: this.latencies,
    };
  }
}

/**
 * Closed loop: `concurrency` workers, each sending its next request as soon as the previous
 * one answered, until `seconds` are up. Requests in flight at the deadline are awaited and
 * counted; the rate divides by the time until the last one answered.
 */
export async function closedLoop<J extends Job = Job>(o: {
  client: HttpClient;
  headers: (job: J) => http.OutgoingHttpHeaders;
  concurrency: number;
  seconds: number;
  next: () => J;
  check: Checker;
  perAccount: Int32Array;
  /** Sends the job in place of one POST (e.g. authorize, then the event); the latency covers it all. */
  send?: (job: J) => Promise<HttpResponse>;
}): Promise<LoadResult> {
  const tally = new Tally(o.perAccount);
  const start = performance.now();
  const deadline = start + o.seconds * 1000;
  let last = start;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const job = o.next();
      const t = performance.now();
      let res: HttpResponse | null = null;
      let err: unknown = null;
      try {
        res = o.send
          ? await o.send(job)
          : await o.client.request('POST', job.path, o.headers(job), job.body, job.keepBody);
      } catch (e) {
        err = e;
      }
      const now = performance.now();
      last = Math.max(last, now);
      tally.record(job, res, err, o.check, now - t);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return tally.result((last - start) / 1000);
}

/**
 * Open loop: request i is due at start + i / rate, sent then whatever the answers do, and its
 * latency runs from that scheduled time (so a stall shows up in the latency, not hidden by
 * sending less).
 */
export async function openLoop(o: {
  client: HttpClient;
  headers: (job: Job) => http.OutgoingHttpHeaders;
  rate: number;
  seconds: number;
  next: () => Job;
  check: Checker;
  perAccount: Int32Array;
}): Promise<LoadResult & { maxSendLagMs: number }> {
  const tally = new Tally(o.perAccount);
  const total = Math.round(o.rate * o.seconds);
  const interval = 1000 / o.rate;
  const start = performance.now() + 5;
  let sent = 0;
  let done = 0;
  let last = start;
  let maxSendLagMs = 0;
  return new Promise((resolve) => {
    const finish = (): void => resolve({ ...tally.result((last - start) / 1000), maxSendLagMs });
    const fire = (scheduled: number): void => {
      const job = o.next();
      o.client.request('POST', job.path, o.headers(job), job.body, job.keepBody).then(
        (res) => settle(job, res, null, scheduled),
        (err: unknown) => settle(job, null, err, scheduled),
      );
    };
    const settle = (job: Job, res: HttpResponse | null, err: unknown, scheduled: number): void => {
      const now = performance.now();
      last = Math.max(last, now);
      tally.record(job, res, err, o.check, now - scheduled);
      if (++done === total) finish();
    };
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduled = start + sent * interval;
        maxSendLagMs = Math.max(maxSendLagMs, now - scheduled);
        sent++;
        fire(scheduled);
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    if (total === 0) finish();
    else setTimeout(tick, 5);
  });
}
