import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AccountsModule } from '../accounts/accounts.module.js';
import { ConsoleModule } from '../console/console.module.js';
import { AuthGuard } from './auth.guard.js';

@Module({
  imports: [AccountsModule, ConsoleModule],
  providers: [{ provide: APP_GUARD, useClass: AuthGuard }],
})
export class AuthModule {}
