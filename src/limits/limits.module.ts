import { Module } from '@nestjs/common';
import { RateLimitInterceptor } from './rate-limit.interceptor.js';

@Module({
  providers: [RateLimitInterceptor],
  exports: [RateLimitInterceptor],
})
export class LimitsModule {}
