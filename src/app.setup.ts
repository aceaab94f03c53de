import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter.js';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { BodyParsingInterceptor } from './common/http/body.interceptor.js';
import { requestContext } from './common/http/request-context.js';
import { RateLimitInterceptor } from './limits/rate-limit.interceptor.js';
import { MetricsService } from './metrics/metrics.service.js';
import { timeRequests } from './metrics/time-requests.js';
import { RequestHygieneInterceptor } from './common/http/request-hygiene.interceptor.js';
import { createValidationPipe } from './common/http/validation.js';
import { Reflector } from '@nestjs/core';
import { serveConsole } from './console/console.static.js';

/** Everything main.ts and the e2e tests share, so tests run the app as it is deployed. */
export function configureApp(
  app: INestApplication,
  opts: { requestLogger?: RequestHandler } = {},
): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  // Every response names its request (X-Request-Id), and so does every log line written for it.
  express.use(requestContext);
  if (opts.requestLogger) express.use(opts.requestLogger);
  express.use(timeRequests(app.get(MetricsService)));
  // The usual security headers; the console's own pages set their CSP where they are served.
  // (nosniff, X-Frame-Options DENY, Referrer-Policy, HSTS...). No CSP here: /docs runs
  // Swagger UI's inline scripts; the console's pages set their own.
  express.use(
    helmet({
      contentSecurityPolicy: false,
      crossOriginEmbedderPolicy: false,
      frameguard: { action: 'deny' },
    }),
  );
  // API answers (balances, new keys) are never stored by a browser or a proxy.
  express.use(
    '/v1',
    (_req: unknown, res: { setHeader(n: string, v: string): void }, next: () => void) => {
      res.setHeader('Cache-Control', 'no-store');
      next();
    },
  );
  // Responses are API answers, never cached by ETag; hashing every body costs CPU per request.
  express.set('etag', false);
  // After the guards: rate limits, then bodies are parsed (a keyless or limited request is
  // refused unread), then checked.
  app.useGlobalInterceptors(
    app.get(RateLimitInterceptor),
    new BodyParsingInterceptor(app.get(Reflector)),
    new RequestHygieneInterceptor(app.get(Reflector)),
  );
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  serveConsole(express);

  const config = new DocumentBuilder()
    .setTitle('Image API billing')
    .setDescription(
      'Billing and metering for the image-API gateway. Money, ratios and rates are decimal strings in USD; ' +
        'errors are { error: { code, message, details } }; lists take ?limit= (1..500) and ?cursor=.',
    )
    .setVersion('1')
    .addBearerAuth()
    .build();
  const doc = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs-json' });
}
