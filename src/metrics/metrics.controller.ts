import { Controller, Get, Header, Inject, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ConfigService } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '../auth/principal.js';
import { hashForCompare, matchesAny } from '../auth/secrets.js';
import { DomainError } from '../common/errors/domain-error.js';
import type { AppConfig } from '../config/app.config.js';
import { MetricsService } from './metrics.service.js';

/** GET /metrics for Prometheus: with an admin key or METRICS_TOKEN as the bearer token. */
@ApiTags('operations')
@ApiBearerAuth()
@Controller('metrics')
export class MetricsController {
  private readonly allowed: Buffer[];

  constructor(
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    const auth = config.get('auth', { infer: true });
    this.allowed = [
      ...auth.adminKeys.map((k) => hashForCompare(k.key)),
      ...(auth.metricsToken ? [hashForCompare(auth.metricsToken)] : []),
    ];
  }

  @Get()
  // Checked here rather than by role: a scraper holds METRICS_TOKEN, which is no role's key.
  @Public()
  @Header('Cache-Control', 'no-store')
  @ApiOkResponse({ description: 'Prometheus text format' })
  async scrape(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<string> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m || !matchesAny(hashForCompare(m[1]), this.allowed))
      throw new DomainError('unauthorized', 'missing or unknown metrics token');
    const text = await this.metrics.render();
    // Set only on success: an error keeps the contract's JSON body.
    res.header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    return text;
  }
}
