import { Dec } from './env.js';
import type { Fixture } from './fixture.js';
import type { PlannedHold } from './plan.js';
import { noRetries, Resender, type RetryOptions, type RetryStats } from './resender.js';
import type { Target } from './service.js';

// ---- the gateway's authorizes and releases --------------------------------------------------------

export interface HoldStats extends RetryStats {
  authorizes: number;
  /** allowed: true, with the planned hold (placed now, or the same one again). */
  allowed: number;
  /** Of those, answered after an attempt of the same call failed (its answer lost). */
  allowedAfterFailure: number;
  insufficientBalance: number;
  requestSettled: number;
  /** request_settled on the call's first attempt, before anything could have closed it. */
  requestSettledFirstTry: number;
  releases: number;
  /** 200 { status: "released" }. */
  released: number;
  /** 404: nothing was held (its authorize had been refused). */
  releaseUnknown: number;
}

export interface AuthorizeAnswer {
  allowed: boolean;
  reason?: string;
  tokenId?: string;
  accountId?: string;
  group?: string;
  ratio?: string;
  balance?: string;
  available?: string;
  hold?: { requestId: string; amount: string; expiresAt: string } | null;
}

/** What the books check needs to know of the holds: the plan and what authorize answered. */
export interface HoldPlan {
  holds: readonly PlannedHold[];
  /** Request ids some authorize answered allowed: each must have a holds row. */
  allowed: ReadonlySet<string>;
  /** Request ids that may hold money though no answer showed a hold: see HoldGateway. */
  uncertain: ReadonlySet<string>;
}

const refused = (a: AuthorizeAnswer | null): boolean =>
  a !== null && !a.allowed && a.reason === 'insufficient_balance';

/**
 * The gateway's `authorize` before each request and `release` of abandoned work, each resent
 * until definitive (see Resender). An allowed answer must carry the planned hold on the right
 * token, account, group and ratio, the same hold on every answer for a request id; a refusal
 * may only be insufficient_balance (never on an account whose credit covers everything
 * planned on it) or request_settled.
 */
export class HoldGateway extends Resender<HoldStats> {
  /** Request ids some authorize answered allowed: true. */
  readonly allowed = new Set<string>();
  /**
   * Request ids whose hold may exist without an allowed answer: an attempt's answer was lost
   * before a refusal, or the answer was request_settled.
   */
  readonly uncertain = new Set<string>();
  /** The expiry of the hold each allowed answer showed: one hold per request id. */
  private readonly expiresAt = new Map<string, string>();

  constructor(
    gatewayKey: string,
    private readonly fx: Fixture,
    private readonly neverShort: ReadonlySet<number>,
    o: RetryOptions = { giveUpMs: 180_000, max409: 20 },
  ) {
    super(
      gatewayKey,
      {
        authorizes: 0,
        ...noRetries(),
        allowed: 0,
        allowedAfterFailure: 0,
        insufficientBalance: 0,
        requestSettled: 0,
        requestSettledFirstTry: 0,
        releases: 0,
        released: 0,
        releaseUnknown: 0,
      },
      o,
    );
  }

  plan(holds: readonly PlannedHold[]): HoldPlan {
    return { holds, allowed: this.allowed, uncertain: this.uncertain };
  }

  /** Authorizes `h` on `target`; the checked answer, or null when there was none. */
  async authorize(target: Target, h: PlannedHold): Promise<AuthorizeAnswer | null> {
    this.stats.authorizes++;
    const answer = await this.post(target, '/v1/gateway/authorize', h.json, h.requestId);
    if (!answer) {
      this.uncertain.add(h.requestId);
      return null;
    }
    const { res, failedBefore } = answer;
    let a: AuthorizeAnswer;
    try {
      if (res.status !== 200) throw new Error('not 200');
      a = JSON.parse(res.body) as AuthorizeAnswer;
    } catch {
      this.fail(
        `authorize@${target.name} ${h.requestId} → ${res.status}: ${res.body.slice(0, 200)}`,
      );
      this.uncertain.add(h.requestId);
      return null;
    }
    if (a.allowed) this.checkAllowed(target, h, a, failedBefore);
    else this.checkRefused(target, h, a, failedBefore);
    return a;
  }

  private checkAllowed(
    target: Target,
    h: PlannedHold,
    a: AuthorizeAnswer,
    failedBefore: boolean,
  ): void {
    const where = `authorize@${target.name} ${h.requestId} (${h.what})`;
    const tok = this.fx.tokens[h.token];
    this.stats.allowed++;
    if (failedBefore) this.stats.allowedAfterFailure++;
    this.allowed.add(h.requestId);
    if (a.tokenId !== tok.id || a.accountId !== this.fx.accounts[h.account].id)
      this.fail(`${where}: answered token ${a.tokenId} / account ${a.accountId}`);
    if (a.group !== tok.group || a.ratio === undefined || !new Dec(a.ratio).eq(tok.ratio))
      this.fail(`${where}: group ${a.group} ratio ${a.ratio}, expected ${tok.group}`);
    const hold = a.hold;
    if (!hold || hold.requestId !== h.requestId) {
      this.fail(`${where}: allowed with hold ${JSON.stringify(hold)}`);
      return;
    }
    if (!new Dec(hold.amount).eq(h.amount))
      this.fail(`${where}: holds ${hold.amount}, expected ${h.amount.toFixed()}`);
    const first = this.expiresAt.get(h.requestId);
    if (first !== undefined && first !== hold.expiresAt)
      this.fail(`${where}: a second hold, expiring ${hold.expiresAt} (the first ${first})`);
    this.expiresAt.set(h.requestId, hold.expiresAt);
    // available = balance − held, and held includes this hold.
    if (
      a.balance === undefined ||
      a.available === undefined ||
      new Dec(a.available).gt(new Dec(a.balance).minus(hold.amount))
    )
      this.fail(`${where}: available ${a.available} > balance ${a.balance} − ${hold.amount}`);
  }

  private checkRefused(
    target: Target,
    h: PlannedHold,
    a: AuthorizeAnswer,
    failedBefore: boolean,
  ): void {
    const where = `authorize@${target.name} ${h.requestId} (${h.what})`;
    if (failedBefore || a.reason === 'request_settled') this.uncertain.add(h.requestId);
    if (a.reason === 'insufficient_balance') {
      this.stats.insufficientBalance++;
      if (this.neverShort.has(h.account))
        this.fail(
          `${where}: insufficient_balance on account #${h.account}, whose credit covers every charge and hold planned on it`,
        );
    } else if (a.reason === 'request_settled') {
      this.stats.requestSettled++;
      if (!failedBefore) this.stats.requestSettledFirstTry++;
    } else {
      this.fail(`${where}: refused with ${a.reason}`);
    }
  }

  /**
   * Releases an abandoned request's hold: 200 "released" (idempotent), or 404 only when its
   * own authorize (`answer`) was refused for insufficient balance and so may hold nothing.
   */
  async release(target: Target, h: PlannedHold, answer: AuthorizeAnswer | null): Promise<void> {
    this.stats.releases++;
    const path = `/v1/gateway/holds/${encodeURIComponent(h.requestId)}/release`;
    const got = await this.post(target, path, undefined, `release ${h.requestId}`);
    if (!got) return;
    const { res } = got;
    const where = `release@${target.name} ${h.requestId}`;
    if (res.status === 404 && refused(answer)) {
      this.stats.releaseUnknown++;
      return;
    }
    let status: string | undefined;
    try {
      status = (JSON.parse(res.body) as { status?: string }).status;
    } catch {
      status = undefined;
    }
    if (res.status !== 200 || status !== 'released')
      this.fail(
        `${where} → ${res.status}: ${res.body.slice(0, 200)} (authorize: ${JSON.stringify(answer)})`,
      );
    else this.stats.released++;
  }
}

/** The figures of a run's authorizes and releases, for its log and summary. */
export function holdFigures(s: HoldStats): string {
  return (
    `${s.authorizes} authorizes: ${s.allowed} allowed (${s.allowedAfterFailure} after a lost answer), ` +
    `${s.insufficientBalance} insufficient_balance, ${s.requestSettled} request_settled (${s.requestSettledFirstTry} on a first try); ` +
    `${s.releases} releases: ${s.released} released, ${s.releaseUnknown} 404 (nothing held); ` +
    `${s.retries} retries (${s.networkErrors} connection errors, ${s.down} while down, ${s.http5xx} HTTP 5xx)`
  );
}
