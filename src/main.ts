import 'reflect-metadata';
import type { Server } from 'node:http';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { generateSecret } from './auth/secrets.js';
import { validateEnv } from './config/env.validation.js';
import { resolveDatabaseUrl } from './database/resolve-database.js';
import { createPino, httpLogger, PinoNestLogger } from './common/logging/logger.js';

async function bootstrap(): Promise<void> {
  // Refuse a bad configuration before anything starts, naming the variable.
  validateEnv(process.env);
  const log = createPino(process.env.LOG_LEVEL || 'info');

  const db = await resolveDatabaseUrl((m) => log.info(m));
  process.env.DATABASE_URL = db.url;

  // A local run without keys gets fresh ones, printed once here and never logged again.
  const generated: string[] = [];
  if (!process.env.ADMIN_API_KEY) {
    process.env.ADMIN_API_KEY = generateSecret('admin_');
    generated.push(`ADMIN_API_KEY=${process.env.ADMIN_API_KEY}`);
  }
  if (!process.env.GATEWAY_API_KEY) {
    process.env.GATEWAY_API_KEY = generateSecret('gw_');
    generated.push(`GATEWAY_API_KEY=${process.env.GATEWAY_API_KEY}`);
  }

  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    logger: new PinoNestLogger(log),
    bodyParser: false,
    // The Stripe webhook verifies its signature over the exact bytes received.
    rawBody: true,
  });
  app.use(httpLogger(log));
  configureApp(app);
  // Close the HTTP server and the pool first, then the embedded database if we started one.
  const shutdown = (signal: string): void => {
    log.info(`${signal}: shutting down`);
    void app
      .close()
      .then(() => db.stop?.())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  const port = Number.parseInt(process.env.PORT || '3000', 10);
  await app.listen(port);
  // Keep idle keep-alive connections longer than clients and proxies usually do (60 s), so
  // the server is not the side that closes a socket a client is about to reuse.
  const server: Server = app.getHttpServer();
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  if (generated.length > 0) {
    process.stdout.write(
      `\nGenerated keys for this run (shown once):\n  ${generated.join('\n  ')}\n\n`,
    );
  }
  log.info(`listening on http://localhost:${port} (docs at /docs)`);
}

bootstrap().catch((err: unknown) => {
  process.stderr.write(`startup failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
