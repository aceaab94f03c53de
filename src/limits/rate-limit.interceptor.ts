import {
  CallHandler,
  ExecutionContext,
  HttpException,
  Inject,
  Injectable,
  NestInterceptor,
  OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, Observable, switchMap } from 'rxjs';
import type { AuthedRequest } from '../auth/principal.js';
import type { AppConfig } from '../config/app.config.js';
import { MemoryWindowCounter, RedisWindowCounter, WindowCounter } from './window-counter.js';

const WINDOW_MS = 60_000;

/**
 * Rate limits, after the guards (so the principal is known) and before a body is parsed:
 * RATE_LIMIT_PER_MINUTE per customer (console key or session), UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE
 * per client address for /v1 calls without a principal (sign-in, sign-up, ...), and none for
 * the gateway, admins or the Stripe webhook. Counters live in Redis when RATE_LIMIT_REDIS_URL
 * is set (shared by every instance), else in this instance's memory.
 * Over the limit: 429 with Retry-After.
 */
@Injectable()
export class RateLimitInterceptor implements NestInterceptor, OnApplicationShutdown {
  private readonly counter: WindowCounter;
  private readonly limits: AppConfig['limits'];

  constructor(@Inject(ConfigService) config: ConfigService<AppConfig, true>) {
    this.limits = config.get('limits', { infer: true });
    this.counter = this.limits.redisUrl
      ? new RedisWindowCounter(this.limits.redisUrl)
      : new MemoryWindowCounter();
  }

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const req = ctx.switchToHttp().getRequest<AuthedRequest & FastifyRequest>();
    const bucket = this.bucketOf(req);
    if (!bucket) return next.handle();
    const res = ctx.switchToHttp().getResponse<FastifyReply>();
    return from(this.counter.hit(bucket.key, WINDOW_MS)).pipe(
      switchMap((count) => {
        if (count.hits > bucket.limit) {
          res.header('Retry-After', String(count.resetSeconds));
          throw new HttpException(
            `too many requests: at most ${bucket.limit} a minute; retry in ${count.resetSeconds} s`,
            429,
          );
        }
        return next.handle();
      }),
    );
  }

  private bucketOf(req: AuthedRequest & FastifyRequest): { key: string; limit: number } | null {
    const p = req.principal;
    if (p?.role === 'customer')
      return { key: `c:${p.accountId}`, limit: this.limits.perCustomerPerMinute };
    if (p) return null; // gateway and admin keys are not limited
    // Stripe retries its webhook on its own schedule; limiting it would only delay credits.
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    if (!path.startsWith('/v1/') || path === '/v1/stripe/webhook') return null;
    return { key: `ip:${req.ip ?? 'unknown'}`, limit: this.limits.unauthenticatedPerMinute };
  }

  onApplicationShutdown(): Promise<void> {
    return this.counter.close();
  }
}
