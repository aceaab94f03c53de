import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AccountsModule } from './accounts/accounts.module.js';
import { AuthModule } from './auth/auth.module.js';
import type { AppConfig } from './config/app.config.js';
import { HoldsModule } from './holds/holds.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { AuditModule } from './audit/audit.module.js';
import { LimitsModule } from './limits/limits.module.js';
import { DatabaseModule } from './database/database.module.js';
import { CatalogModule } from './catalog/catalog.module.js';
import { GroupsModule } from './groups/groups.module.js';
import { TokensModule } from './tokens/tokens.module.js';
import { UsageModule } from './usage/usage.module.js';
import { PaymentsModule } from './payments/payments.module.js';
import { RedemptionsModule } from './redemptions/redemptions.module.js';
import { StatementsModule } from './statements/statements.module.js';
import { HealthModule } from './health/health.module.js';
import { LedgerModule } from './ledger/ledger.module.js';
import { ConsoleModule } from './console/console.module.js';

/** The service's modules; AppModule.forRoot adds the configuration they all read. */
@Module({
  imports: [
    // The gateway's modules first (usage events, authorize, hold release: nearly all the
    // traffic). Express tried routes in this order; Fastify's radix-tree router does not
    // depend on it. No two modules' routes overlap.
    UsageModule,
    TokensModule,
    HoldsModule,
    DatabaseModule,
    MetricsModule,
    AuditModule,
    LimitsModule,
    HealthModule,
    LedgerModule,
    AccountsModule,
    AuthModule,
    GroupsModule,
    CatalogModule,
    PaymentsModule,
    RedemptionsModule,
    StatementsModule,
    ConsoleModule,
  ],
})
export class AppModule {
  /** `config` is built once at boot (loadConfig) and is all the service ever reads of its environment. */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          ignoreEnvVars: true,
          load: [() => ({ ...config })],
        }),
      ],
    };
  }
}
