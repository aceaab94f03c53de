import 'reflect-metadata';
import type { Server } from 'node:http';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { addRequestHook, configureApp, createHttpAdapter } from './app.setup.js';
import { generateSecret } from './auth/secrets.js';
import { AppConfig, loadConfig } from './config/app.config.js';
import { startLocalDatabase } from './database/resolve-database.js';
import { accessLog, createPino, PinoNestLogger } from './common/logging/logger.js';

type Log = ReturnType<typeof createPino>;

/** How long a draining server keeps accepting while it tells clients to go elsewhere. */
const DRAIN_NOTICE_MS = 1000;

/**
 * Fills in what a local run may leave out: the embedded database and fresh keys (printed
 * once). Production never gets here without them (loadConfig refuses to start).
 */
async function localDefaults(
  config: AppConfig,
  log: Log,
): Promise<{ config: AppConfig; stopDb?: () => Promise<void>; generated: string[] }> {
  let stopDb: (() => Promise<void>) | undefined;
  let database = config.database;
  if (!database.url) {
    const db = await startLocalDatabase((m) => log.info(m));
    database = { ...database, url: db.url };
    stopDb = db.stop;
  }
  const generated: string[] = [];
  let { adminKeys, gatewayKeys } = config.auth;
  if (adminKeys.length === 0) {
    adminKeys = [{ name: 'admin', key: generateSecret('admin_') }];
    generated.push(`ADMIN_API_KEY=${adminKeys[0].key}`);
  }
  if (gatewayKeys.length === 0) {
    gatewayKeys = [generateSecret('gw_')];
    generated.push(`GATEWAY_API_KEY=${gatewayKeys[0]}`);
  }
  return {
    config: { ...config, database, auth: { ...config.auth, adminKeys, gatewayKeys } },
    stopDb,
    generated,
  };
}

/**
 * SIGTERM: answer with `Connection: close` from now on, stop accepting connections after a
 * short notice, let the requests in flight finish, force the stragglers closed when the
 * grace period ends, then close the pool and the embedded database, and exit 0.
 */
function onShutdown(
  app: NestFastifyApplication,
  config: AppConfig,
  log: Log,
  draining: { on: boolean },
  stopDb?: () => Promise<void>,
): void {
  const shutdown = async (signal: string): Promise<void> => {
    if (draining.on) return;
    draining.on = true;
    const server: Server = app.getHttpServer();
    const graceMs = config.app.shutdownGraceSeconds * 1000;
    log.info(`${signal}: draining requests in flight (up to ${config.app.shutdownGraceSeconds} s)`);
    // First a short notice: still accepting, but every answer says Connection: close, so
    // keep-alive clients close their sockets themselves instead of having a request they are
    // sending cut off by a closing server.
    await new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_NOTICE_MS, graceMs)));
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([closed, grace]);
    clearInterval(sweep);
    server.closeAllConnections();
    await app.close();
    await stopDb?.();
    log.info('shut down');
    process.exit(0);
  };
  const run = (signal: string) => {
    shutdown(signal).catch((err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => run('SIGTERM'));
  process.once('SIGINT', () => run('SIGINT'));
}

/**
 * Every interface, as Express listened (Fastify's default is localhost only): IPv6 and IPv4
 * where the host has IPv6, else IPv4.
 */
async function listen(app: NestFastifyApplication, port: number): Promise<void> {
  try {
    await app.listen(port, '::');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
    await app.listen(port, '0.0.0.0');
  }
}

async function bootstrap(): Promise<void> {
  // Refuse a bad configuration before anything starts, naming the variable.
  const loaded = loadConfig(process.env);
  const log = createPino(loaded.app.logLevel);
  const { config, stopDb, generated } = await localDefaults(loaded, log);

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    createHttpAdapter(),
    {
      logger: new PinoNestLogger(log),
      // Bodies are read after the guards (BodyParsingInterceptor), which also keeps the exact
      // bytes the Stripe webhook verifies its signature over.
      bodyParser: false,
    },
  );
  const draining = { on: false };
  addRequestHook(app, (_req, reply, done) => {
    // While draining, every answer tells the client to reconnect elsewhere.
    if (draining.on) reply.header('Connection', 'close');
    done();
  });
  configureApp(app, { requestLogger: accessLog(log) });
  onShutdown(app, config, log, draining, stopDb);
  await listen(app, config.app.port);
  const server: Server = app.getHttpServer();
  // Keep idle keep-alive connections longer than clients and proxies usually do (60 s), so
  // the server is not the side that closes a socket a client is about to reuse.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // A request (headers and body) must arrive within this: slow senders cannot pin sockets.
  server.requestTimeout = config.app.requestTimeoutMs;
  if (generated.length > 0) {
    process.stdout.write(
      `\nGenerated keys for this run (shown once):\n  ${generated.join('\n  ')}\n\n`,
    );
  }
  log.info(`listening on http://localhost:${config.app.port} (docs at /docs)`);
}

bootstrap().catch((err: unknown) => {
  process.stderr.write(
    `startup failed: ${err instanceof Error ? err.message : JSON.stringify(err ?? 'unknown error')}\n`,
  );
  process.exit(1);
});
