import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter.js';
import { RequestHygieneInterceptor } from './common/http/request-hygiene.interceptor.js';
import { createValidationPipe } from './common/http/validation.js';
import { Reflector } from '@nestjs/core';

/** Largest JSON body accepted: a 1,000-event batch fits with room to spare. */
export const BODY_LIMIT = '2mb';

/** Everything main.ts and the e2e tests share, so tests run the app as it is deployed. */
export function configureApp(app: INestApplication): void {
  const express = app as NestExpressApplication;
  express.useBodyParser('json', { limit: BODY_LIMIT });
  express.disable('x-powered-by');
  // Responses are API answers, never cached by ETag; hashing every body costs CPU per request.
  express.set('etag', false);
  app.useGlobalInterceptors(new RequestHygieneInterceptor(app.get(Reflector)));
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());

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
