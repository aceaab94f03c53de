import { ArgumentsHost, INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter.js';
import { BodyParsingInterceptor, deferBodyParsing } from './common/http/body.interceptor.js';
import { requestContext, requestId } from './common/http/request-context.js';
import { RateLimitInterceptor } from './limits/rate-limit.interceptor.js';
import { MetricsService } from './metrics/metrics.service.js';
import { timeRequests } from './metrics/time-requests.js';
import { RequestHygieneInterceptor } from './common/http/request-hygiene.interceptor.js';
import { createValidationPipe } from './common/http/validation.js';
import { Reflector } from '@nestjs/core';
import { serveConsole } from './console/console.static.js';

/**
 * The HTTP adapter main.ts and the e2e tests share. Routing as Express did it: a trailing
 * slash and the letter case of a path do not matter, and a path parameter may be as long as
 * a request line allows (Fastify's default of 100 characters would turn a long id into a 404
 * before validation could name it).
 */
export function createHttpAdapter(): FastifyAdapter {
  const filter = new AllExceptionsFilter();
  const hooks: onRequestHookHandler[] = [];
  const adapter = new FastifyAdapter({
    // Every response names its request (X-Request-Id), and so does every log line written for it.
    genReqId: requestId,
    routerOptions: {
      ignoreTrailingSlash: true,
      caseSensitive: false,
      maxParamLength: 16 * 1024,
    },
    // A path the router cannot decode (bad percent-encoding) is refused before any hook runs
    // and, left to Nest's adapter, answered by Fastify's default error handler: here the
    // request hooks run (headers, access line, timer) and the exception filter answers the
    // contract's 400 naming the path.
    frameworkErrors: (error: Error, req: FastifyRequest, reply: FastifyReply) => {
      for (const hook of hooks) void hook.call(adapter.getInstance(), req, reply, noop);
      const host = {
        switchToHttp: () => ({ getRequest: () => req, getResponse: () => reply }),
      } as unknown as ArgumentsHost;
      filter.catch(error, host);
    },
    // No Nest middleware (app.use / MiddlewareConsumer) here: no middie hook on every request.
    skipMiddie: true,
  });
  routerErrorHooks.set(adapter.getInstance(), hooks);
  return adapter;
}

const noop = (): void => undefined;
/** The onRequest hooks of each instance, which frameworkErrors runs as well (see addRequestHook). */
const routerErrorHooks = new WeakMap<FastifyInstance, onRequestHookHandler[]>();

/**
 * Adds a synchronous onRequest hook: it runs for every request, those the router refuses
 * (frameworkErrors) included.
 */
export function addRequestHook(app: INestApplication, hook: onRequestHookHandler): void {
  const fastify: FastifyInstance = (app as NestFastifyApplication).getHttpAdapter().getInstance();
  fastify.addHook('onRequest', hook);
  routerErrorHooks.get(fastify)?.push(hook);
}

/** Everything main.ts and the e2e tests share, so tests run the app as it is deployed. */
export function configureApp(
  app: INestApplication,
  opts: { requestLogger?: onRequestHookHandler } = {},
): void {
  const fastify: FastifyInstance = (app as NestFastifyApplication).getHttpAdapter().getInstance();
  // Bodies are read after the guards and rate limits (BodyParsingInterceptor), not by Fastify.
  deferBodyParsing(fastify);
  // Every response carries helmet's security headers and names its request (X-Request-Id);
  // /v1 answers (balances, new keys) are never stored by a browser or a proxy
  // (Cache-Control: no-store). No X-Powered-By, and no ETag: Fastify computes none, and
  // hashing every body would cost CPU on every request.
  addRequestHook(app, requestContext);
  if (opts.requestLogger) addRequestHook(app, opts.requestLogger);
  addRequestHook(app, timeRequests(app.get(MetricsService)));
  // After the guards: rate limits, then bodies are parsed (a keyless or limited request is
  // refused unread), then checked.
  app.useGlobalInterceptors(
    app.get(RateLimitInterceptor),
    new BodyParsingInterceptor(app.get(Reflector)),
    new RequestHygieneInterceptor(app.get(Reflector)),
  );
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  serveConsole(fastify);

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
