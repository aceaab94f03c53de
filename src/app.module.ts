import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AccountsModule } from './accounts/accounts.module.js';
import { AuthModule } from './auth/auth.module.js';
import {
  appConfig,
  authConfig,
  databaseConfig,
  spendConfig,
  stripeConfig,
} from './config/app.config.js';
import { HoldsModule } from './holds/holds.module.js';
import { validateEnv } from './config/env.validation.js';
import { DatabaseModule } from './database/database.module.js';
import { CatalogModule } from './catalog/catalog.module.js';
import { GroupsModule } from './groups/groups.module.js';
import { TokensModule } from './tokens/tokens.module.js';
import { UsageModule } from './usage/usage.module.js';
import { PaymentsModule } from './payments/payments.module.js';
import { StatementsModule } from './statements/statements.module.js';
import { HealthModule } from './health/health.module.js';
import { LedgerModule } from './ledger/ledger.module.js';

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      load: [appConfig, databaseConfig, authConfig, stripeConfig, spendConfig],
      validate: validateEnv,
    }),
    DatabaseModule,
    HealthModule,
    LedgerModule,
    AccountsModule,
    AuthModule,
    HoldsModule,
    GroupsModule,
    CatalogModule,
    TokensModule,
    UsageModule,
    PaymentsModule,
    StatementsModule,
  ],
})
export class AppModule {}
