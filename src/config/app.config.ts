import { EnvironmentVariables, validateEnv } from './env.validation.js';

/** An admin key with the name the audit log records as its actor. */
export interface AdminKey {
  name: string;
  key: string;
}

/**
 * Everything the service reads from its environment, typed, with every default in this one
 * place. Built once at boot (main.ts, or the e2e harness) and injected through
 * `ConfigService<AppConfig, true>`; nothing reads or writes process.env after that.
 */
export interface AppConfig {
  production: boolean;
  app: {
    port: number;
    publicBaseUrl: string;
    logLevel: string;
    /** SIGTERM: how long requests in flight may take to finish. */
    shutdownGraceSeconds: number;
    /** A request must arrive whole within this, or its connection is closed. */
    requestTimeoutMs: number;
  };
  database: {
    /** Empty until resolved: main.ts starts the embedded PostgreSQL when it is unset. */
    url: string;
    poolSize: number;
    /** The longest any statement waits for a row lock (a stuck account cannot stall others for longer). */
    lockTimeoutMs: number;
    statementTimeoutMs: number;
  };
  auth: {
    adminKeys: AdminKey[];
    gatewayKeys: string[];
    /** Bearer token for GET /metrics besides the admin keys; null: admin keys only. */
    metricsToken: string | null;
  };
  stripe: {
    secretKey: string | null;
    webhookSecret: string | null;
    apiBase: string | null;
  };
  spend: {
    /** A hold stops counting this long after it was placed. */
    holdTtlSeconds: number;
    /** How often each instance sweeps expired holds (any instance may; none has to). */
    holdSweepSeconds: number;
  };
  usage: {
    /**
     * Months of raw usage events kept before the current one (USAGE_RETENTION_MONTHS); older
     * months' partitions are dropped. null: keep everything. Roll-ups, ledger, statements
     * and the request register are never dropped.
     */
    retentionMonths: number | null;
  };
  limits: {
    /** Requests a minute per customer key or session. */
    perCustomerPerMinute: number;
    /** Unauthenticated /v1 requests a minute per client address. */
    unauthenticatedPerMinute: number;
    /** Redis for rate-limit counters shared by every instance; null: counted per instance. */
    redisUrl: string | null;
  };
}

const splitKeys = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);

/** `alice:key,bob:key` or plain keys (named `admin`). */
export function parseAdminKeys(v: string | undefined): AdminKey[] {
  return splitKeys(v).map((entry) => {
    const at = entry.indexOf(':');
    return at > 0
      ? { name: entry.slice(0, at), key: entry.slice(at + 1) }
      : { name: 'admin', key: entry };
  });
}

/**
 * Validates the environment and builds the config. In production nothing is implicit: the
 * database and both keys must be given, each missing one named.
 */
export function loadConfig(raw: Record<string, string | undefined>): AppConfig {
  const env: EnvironmentVariables = validateEnv(raw);
  const production = env.NODE_ENV === 'production';
  if (production) {
    const missing = (['DATABASE_URL', 'ADMIN_API_KEY', 'GATEWAY_API_KEY'] as const).filter(
      (k) => !env[k],
    );
    if (missing.length > 0) {
      throw new Error(
        `Invalid configuration:\n  ${missing.map((k) => `${k}: required when NODE_ENV=production`).join('\n  ')}`,
      );
    }
  }
  const port = env.PORT ?? 3000;
  const ttl = env.HOLD_TTL_SECONDS ?? 900;
  return {
    production,
    app: {
      port,
      publicBaseUrl: env.PUBLIC_BASE_URL ?? `http://localhost:${port}`,
      logLevel: env.LOG_LEVEL ?? 'info',
      shutdownGraceSeconds: env.SHUTDOWN_GRACE_SECONDS ?? 25,
      requestTimeoutMs: env.REQUEST_TIMEOUT_MS ?? 30_000,
    },
    database: {
      url: env.DATABASE_URL ?? '',
      poolSize: env.DB_POOL_SIZE ?? 24,
      lockTimeoutMs: env.LOCK_TIMEOUT_MS ?? 5_000,
      statementTimeoutMs: env.STATEMENT_TIMEOUT_MS ?? 30_000,
    },
    auth: {
      adminKeys: parseAdminKeys(env.ADMIN_API_KEY),
      gatewayKeys: splitKeys(env.GATEWAY_API_KEY),
      metricsToken: env.METRICS_TOKEN ?? null,
    },
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY ?? null,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET ?? null,
      apiBase: env.STRIPE_API_BASE ?? null,
    },
    spend: {
      holdTtlSeconds: ttl,
      holdSweepSeconds: Math.max(1, Math.min(30, Math.floor(ttl / 2))),
    },
    usage: { retentionMonths: env.USAGE_RETENTION_MONTHS ?? null },
    limits: {
      perCustomerPerMinute: env.RATE_LIMIT_PER_MINUTE ?? 600,
      unauthenticatedPerMinute: env.UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE ?? 60,
      redisUrl: env.RATE_LIMIT_REDIS_URL ?? null,
    },
  };
}
