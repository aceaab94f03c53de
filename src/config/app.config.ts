import { registerAs } from '@nestjs/config';

export interface AppConfig {
  port: number;
  publicBaseUrl: string;
  logLevel: string;
}

export const appConfig = registerAs('app', (): AppConfig => ({
  port: Number.parseInt(process.env.PORT || '3000', 10),
  publicBaseUrl: process.env.PUBLIC_BASE_URL || `http://localhost:${process.env.PORT || '3000'}`,
  logLevel: process.env.LOG_LEVEL || 'info',
}));

export interface DatabaseConfig {
  url: string;
  poolSize: number;
}

export const databaseConfig = registerAs('database', (): DatabaseConfig => ({
  url: process.env.DATABASE_URL ?? '',
  poolSize: Number.parseInt(process.env.DB_POOL_SIZE || '24', 10),
}));

export interface AuthConfig {
  adminKeys: string[];
  gatewayKeys: string[];
}

const splitKeys = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);

export const authConfig = registerAs('auth', (): AuthConfig => ({
  adminKeys: splitKeys(process.env.ADMIN_API_KEY),
  gatewayKeys: splitKeys(process.env.GATEWAY_API_KEY),
}));

export interface StripeConfig {
  secretKey: string | null;
  webhookSecret: string | null;
  apiBase: string | null;
}

export const stripeConfig = registerAs('stripe', (): StripeConfig => ({
  secretKey: process.env.STRIPE_SECRET_KEY || null,
  webhookSecret: process.env.STRIPE_WEBHOOK_SECRET || null,
  apiBase: process.env.STRIPE_API_BASE || null,
}));

export interface SpendConfig {
  /** A hold stops counting this long after it was placed. */
  holdTtlSeconds: number;
  /** How often each instance sweeps expired holds (any instance may; none has to). */
  holdSweepSeconds: number;
}

export const spendConfig = registerAs('spend', (): SpendConfig => {
  const ttl = Number.parseInt(process.env.HOLD_TTL_SECONDS || '900', 10);
  return {
    holdTtlSeconds: ttl,
    holdSweepSeconds: Math.max(1, Math.min(30, Math.floor(ttl / 2))),
  };
});
