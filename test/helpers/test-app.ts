import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';

export interface TestApp {
  app: INestApplication;
  http: TestAgent;
  adminKey: string;
  gatewayKey: string;
  databaseUrl: string;
  /** A direct connection for assertions on what is stored (never for setting up state). */
  sql: pg.Pool;
  close(): Promise<void>;
}

function serverUrl(): string {
  const url = process.env.TEST_PG_SERVER_URL;
  if (!url)
    throw new Error('TEST_PG_SERVER_URL is not set: run the tests through jest (global setup)');
  return url;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/**
 * Boots the whole AppModule, as main.ts does, on a brand-new database of its own, with
 * migrations and seeds applied at start. With `join`, a second instance on another app's
 * database and keys (as two replicas behind a load balancer); closing it drops nothing.
 */
export async function createTestApp(
  env: Record<string, string> = {},
  join?: TestApp,
): Promise<TestApp> {
  const name = `billing_test_${Date.now()}_${randomBytes(4).toString('hex')}`;
  if (!join) {
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
  }
  const databaseUrl = join ? join.databaseUrl : withDatabase(serverUrl(), name);

  const adminKey = join ? join.adminKey : `admin_${randomBytes(16).toString('hex')}`;
  const gatewayKey = join ? join.gatewayKey : `gw_${randomBytes(16).toString('hex')}`;
  Object.assign(process.env, {
    DATABASE_URL: databaseUrl,
    ADMIN_API_KEY: adminKey,
    GATEWAY_API_KEY: gatewayKey,
    DB_POOL_SIZE: '10',
    ...env,
  });
  const { AppModule } = await import('../../src/app.module.js');
  const { configureApp, createHttpAdapter } = await import('../../src/app.setup.js');
  const { loadConfig } = await import('../../src/config/app.config.js');
  const config = loadConfig({ ...process.env });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.forRoot(config)],
  }).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createHttpAdapter(), {
    bodyParser: false,
    logger: ['error'],
  });
  configureApp(app);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const sql = new pg.Pool({ connectionString: databaseUrl, max: 2 });

  return {
    app,
    http: request.agent(app.getHttpServer()),
    adminKey,
    gatewayKey,
    databaseUrl,
    sql,
    async close() {
      await sql.end();
      await app.close();
      if (join) return;
      const c = new pg.Client({ connectionString: serverUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const bearer = (key: string): [string, string] => ['Authorization', `Bearer ${key}`];
