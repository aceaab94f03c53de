import { Redis } from 'ioredis';

/** Hits counted in a fixed window: how many so far, and seconds until the window ends. */
export interface WindowCount {
  hits: number;
  resetSeconds: number;
}

/** Where rate-limit windows are counted: per instance (memory) or shared (Redis). */
export interface WindowCounter {
  hit(key: string, windowMs: number): Promise<WindowCount>;
  close(): Promise<void>;
}

/** One instance's own counts; old windows are dropped as they are met again or swept. */
export class MemoryWindowCounter implements WindowCounter {
  private readonly windows = new Map<string, { hits: number; endsAt: number }>();
  private readonly sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, w] of this.windows) if (w.endsAt <= now) this.windows.delete(k);
  }, 60_000);

  constructor() {
    this.sweep.unref();
  }

  hit(key: string, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.endsAt <= now) {
      w = { hits: 0, endsAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.hits++;
    return Promise.resolve({
      hits: w.hits,
      resetSeconds: Math.max(1, Math.ceil((w.endsAt - now) / 1000)),
    });
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    return Promise.resolve();
  }
}

// One round trip: count the hit, start the window on the first, answer count and time left.
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }`;

/** Counts shared by every instance, in Redis (ioredis). */
export class RedisWindowCounter implements WindowCounter {
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1 });
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const [hits, pttl] = (await this.redis.eval(INCREMENT, 1, `rl:${key}`, String(windowMs))) as [
      number,
      number,
    ];
    return { hits, resetSeconds: Math.max(1, Math.ceil(Math.max(pttl, 0) / 1000)) };
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
  }
}
