import { Inject, Injectable } from '@nestjs/common';
import { GroupCommit } from '../database/group-commit.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { AuthorizeCall, AuthorizeFacts, TokensRepository } from './tokens.repository.js';

/** Most authorizes one statement takes, and statements in flight per instance. */
const MAX_GROUP = 64;
const MAX_IN_FLIGHT = 4;
/** Beside a transaction in flight, another starts once this many wait, or after this long. */
const MIN_GROUP_WHILE_BUSY = 4;
const BUSY_WAIT_MS = 2;
/** Keys whose account is remembered for the lock order. */
const MAX_REMEMBERED_KEYS = 100_000;

/**
 * The gateway asks before every request, and an authorize that places a hold is a write: its
 * cost is mostly the commit's WAL flush. Authorizes that arrive while earlier ones are being
 * answered share the next statement and its commit (GroupCommit): a lone one goes at once,
 * and under load one flush answers many. An authorize is answered only after its hold is
 * committed. When a group's statement fails, each of its authorizes is asked again alone.
 *
 * Lock order: a group's calls run in one transaction, each taking its account's row lock
 * (and then its token's) when it places a hold, so the calls go in account id order, as
 * ingestion locks accounts (usage_book): concurrent groups then wait for each other but
 * cannot deadlock. A key's account is learned from its first answer; a key not seen yet has
 * no hold attempt (TokensService.holdAttempt needs an earlier answer too), so it takes no
 * lock in the group and its place in the order does not matter. (Both memories are cleared
 * when full, each on its own; a key then remembered by one and not the other may take a lock
 * out of order, and a deadlock is possible: PostgreSQL ends it, and the failed group's
 * authorizes are asked again one at a time.)
 */
@Injectable()
export class AuthorizeQueue {
  private readonly queue: GroupCommit<AuthorizeCall, AuthorizeFacts | null>;
  private readonly accountOf = new Map<string, string>();

  constructor(
    @Inject(TokensRepository) private readonly repo: TokensRepository,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    this.queue = new GroupCommit({
      name: AuthorizeQueue.name,
      maxGroup: MAX_GROUP,
      maxInFlight: MAX_IN_FLIGHT,
      minGroupWhileBusy: MIN_GROUP_WHILE_BUSY,
      busyWaitMs: BUSY_WAIT_MS,
      write: (calls) => this.write(calls),
      written: (answers) => metrics.authorizeGroupSize.observe(answers.length),
    });
  }

  /** authorize_facts for one authorize (TokensRepository.authorizeFacts); null: no such key. */
  async facts(call: AuthorizeCall): Promise<AuthorizeFacts | null> {
    const [answer] = await this.queue.submit([call]);
    return answer;
  }

  private async write(calls: AuthorizeCall[]): Promise<(AuthorizeFacts | null)[]> {
    // Array.prototype.sort is stable: one account's calls keep their arrival order.
    const order = calls
      .map((call, i) => ({ call, i, account: this.accountOf.get(call.keyHash) ?? '' }))
      .sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
    const answers = await this.repo.authorizeFacts(order.map((o) => o.call));
    const inOrder: (AuthorizeFacts | null)[] = calls.map(() => null);
    order.forEach((o, j) => {
      const f = answers[j];
      inOrder[o.i] = f;
      if (f && !this.accountOf.has(o.call.keyHash)) {
        if (this.accountOf.size >= MAX_REMEMBERED_KEYS) this.accountOf.clear();
        this.accountOf.set(o.call.keyHash, f.accountId);
      }
    });
    return inOrder;
  }
}
