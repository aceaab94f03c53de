import { plainToInstance } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';
import { Type } from 'class-transformer';

/** Every variable the service reads. A bad value stops the start with a message naming it. */
export class EnvironmentVariables {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT?: number;

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\//, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  NODE_ENV?: string;

  // Entries are `key` or `name:key`; the name is the audit log's actor.
  @IsOptional()
  @IsString()
  @Matches(/^([A-Za-z0-9_.-]{1,64}:)?[^,:\s]{16,}(,([A-Za-z0-9_.-]{1,64}:)?[^,:\s]{16,})*$/, {
    message:
      'ADMIN_API_KEY must be one or more comma-separated keys (or name:key) of at least 16 characters',
  })
  ADMIN_API_KEY?: string;

  @IsOptional()
  @IsString()
  @Matches(/^[^,\s]{16,}(,[^,\s]{16,})*$/, {
    message: 'GATEWAY_API_KEY must be one or more comma-separated keys of at least 16 characters',
  })
  GATEWAY_API_KEY?: string;

  @IsOptional()
  @IsString()
  @Matches(/^(sk|rk)_/, { message: 'STRIPE_SECRET_KEY must start with sk_ or rk_' })
  STRIPE_SECRET_KEY?: string;

  @IsOptional()
  @IsString()
  @Matches(/^whsec_/, { message: 'STRIPE_WEBHOOK_SECRET must start with whsec_' })
  STRIPE_WEBHOOK_SECRET?: string;

  @IsOptional()
  @IsUrl(
    { require_tld: false, protocols: ['http', 'https'] },
    { message: 'STRIPE_API_BASE must be an http(s) URL' },
  )
  STRIPE_API_BASE?: string;

  @IsOptional()
  @IsUrl(
    { require_tld: false, protocols: ['http', 'https'] },
    { message: 'PUBLIC_BASE_URL must be an http(s) URL' },
  )
  PUBLIC_BASE_URL?: string;

  @IsOptional()
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  DB_POOL_SIZE?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(86400)
  HOLD_TTL_SECONDS?: number;

  /** Months of raw usage events kept before the current one; unset: keep all. */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1200)
  USAGE_RETENTION_MONTHS?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(600)
  SHUTDOWN_GRACE_SECONDS?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1000)
  @Max(600_000)
  REQUEST_TIMEOUT_MS?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(10)
  @Max(600_000)
  LOCK_TIMEOUT_MS?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  STATEMENT_TIMEOUT_MS?: number;

  @IsOptional()
  @IsString()
  @Matches(/^\S{16,}$/, { message: 'METRICS_TOKEN must be at least 16 characters' })
  METRICS_TOKEN?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  RATE_LIMIT_PER_MINUTE?: number;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE?: number;

  @IsOptional()
  @Matches(/^rediss?:\/\//, { message: 'RATE_LIMIT_REDIS_URL must be a redis:// URL' })
  RATE_LIMIT_REDIS_URL?: string;
}

export function validateEnv(config: Record<string, unknown>): EnvironmentVariables {
  // Only the variables this class names are read; the rest of the environment is ignored.
  // Empty strings count as unset, like most shells and compose files treat them.
  const cleaned = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== ''));
  const env = plainToInstance(EnvironmentVariables, cleaned);
  const errors = validateSync(env, { skipMissingProperties: false });
  if (errors.length > 0) {
    const lines = errors.map(
      (e) => `${e.property}: ${Object.values(e.constraints ?? {}).join('; ')}`,
    );
    throw new Error(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return env;
}
