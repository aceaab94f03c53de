import type { onRequestHookHandler } from 'fastify';
import type { MetricsService } from './metrics.service.js';

/** Times every request into billing_http_request_duration_seconds{route,status}. */
export function timeRequests(metrics: MetricsService): onRequestHookHandler {
  return (req, reply, done) => {
    const start = process.hrtime.bigint();
    reply.raw.on('finish', () => {
      // The route template, never the raw path: ids in paths would explode the label set.
      const route = (!req.is404 && req.routeOptions.url) || 'unmatched';
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.httpDuration.observe({ route, status: String(reply.raw.statusCode) }, seconds);
    });
    done();
  };
}
