import type { OutgoingHttpHeaders } from 'node:http';
import type { Checker, Job } from './load.js';

/** The usage events the single-event and batch scenarios send, and how their answers count. */
export interface Traffic {
  runTag: string;
  /** Charged events per account, as the load generator saw them confirmed. */
  perAccount: Int32Array;
  /** Every distinct charge the service answered (one expected: every event is the same). */
  charges: Set<string>;
  /** Gateway headers for a body (content type, length, gateway key). */
  headers: (job: Job) => OutgoingHttpHeaders;
  /** A usage event body for an account and request id. */
  eventWithId: (acct: number, requestId: string) => string;
  /** Single events round robin over every account. */
  nextSpread: () => Job;
  /** Single events all on account 0. */
  nextHot: () => Job;
  /** A batch of `batchSize` events round robin over every account. */
  nextBatch: () => Job;
  /** 201 with its charge noted. */
  checkSingle: Checker;
  /** 200 with every result charged. */
  checkBatch: Checker;
}

export function makeTraffic(o: {
  tokenIds: string[];
  gatewayKey: string;
  accounts: number;
  batchSize: number;
}): Traffic {
  const runTag = Date.now().toString(36);
  let seq = 0;
  const perAccount = new Int32Array(o.accounts);
  const tails = o.tokenIds.map(
    (t) =>
      `","tokenId":"${t}","model":"gpt-image-2","statusCode":200,"usage":{"inputTokens":89,"outputTokens":1145}}`,
  );
  const eventWithId = (acct: number, requestId: string): string =>
    `{"requestId":"${requestId}${tails[acct]}`;
  const eventJson = (acct: number): string => eventWithId(acct, `b${runTag}-${seq++}`);
  const gwAuth = `Bearer ${o.gatewayKey}`;
  const headers = (job: Job): OutgoingHttpHeaders => ({
    'content-type': 'application/json',
    'content-length': job.body.length, // ASCII only
    authorization: gwAuth,
  });
  const charges = new Set<string>();
  // Only the first single event's answer is read (for its charge); the rest are drained.
  let sampleNext = true;
  let rr = 0;
  const single = (acct: number): Job => {
    const keepBody = sampleNext;
    sampleNext = false;
    return { path: '/v1/usage-events', body: eventJson(acct), accounts: [acct], keepBody };
  };
  const nextBatch = (): Job => {
    const accounts = new Array<number>(o.batchSize);
    const parts = new Array<string>(o.batchSize);
    for (let i = 0; i < o.batchSize; i++) {
      const a = rr++ % o.accounts;
      accounts[i] = a;
      parts[i] = eventJson(a);
    }
    return {
      path: '/v1/usage-events/batch',
      body: `{"events":[${parts.join(',')}]}`,
      accounts,
      keepBody: true,
    };
  };
  const checkSingle: Checker = (job, res) => {
    if (res.status === 201) {
      if (res.body) charges.add(String((JSON.parse(res.body) as { charge: string }).charge));
      return { ok: [true] };
    }
    return { ok: [false], error: `HTTP ${res.status}: ${res.body}` };
  };
  const checkBatch: Checker = (job, res) => {
    if (res.status !== 200)
      return { ok: job.accounts.map(() => false), error: `HTTP ${res.status}: ${res.body}` };
    const results = (JSON.parse(res.body) as { results: { outcome: string; charge?: string }[] })
      .results;
    let error: string | undefined;
    const ok = job.accounts.map((_, i) => {
      const r = results[i];
      if (r?.outcome === 'charged') {
        if (r.charge) charges.add(r.charge);
        return true;
      }
      error ??= `batch result ${i}: ${JSON.stringify(r)}`;
      return false;
    });
    return { ok, error };
  };
  return {
    runTag,
    perAccount,
    charges,
    headers,
    eventWithId,
    nextSpread: () => single(rr++ % o.accounts),
    nextHot: () => single(0),
    nextBatch,
    checkSingle,
    checkBatch,
  };
}
