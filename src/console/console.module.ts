import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AccountsModule } from '../accounts/accounts.module.js';
import { GroupsModule } from '../groups/groups.module.js';
import { PaymentsModule } from '../payments/payments.module.js';
import { ConsoleAuthService } from './console-auth.service.js';
import { ConsoleMeController } from './console-me.controller.js';
import { ConsoleReadsService } from './console-reads.service.js';
import { consoleConfig } from './console.config.js';
import { AdminInvitesController, ConsoleController } from './console.controller.js';
import { InvitesRepository } from './invites.repository.js';
import { InvitesService } from './invites.service.js';
import { LoginsRepository } from './logins.repository.js';
import { SessionsRepository } from './sessions.repository.js';
import { ConsoleSessionsService } from './sessions.service.js';
import { ThrottleRepository } from './throttle.repository.js';

/**
 * The customer console's back end: sign-up, sign-in and sessions (which the global guard
 * accepts on /v1/me like a console key), admin invites, and the few customer reads the
 * console needs that no other module answered. The pages themselves are web/, served by
 * serveConsole (console.static.ts).
 */
@Module({
  imports: [ConfigModule.forFeature(consoleConfig), AccountsModule, GroupsModule, PaymentsModule],
  controllers: [ConsoleController, AdminInvitesController, ConsoleMeController],
  providers: [
    LoginsRepository,
    SessionsRepository,
    InvitesRepository,
    ThrottleRepository,
    ConsoleSessionsService,
    ConsoleAuthService,
    InvitesService,
    ConsoleReadsService,
  ],
  exports: [ConsoleSessionsService],
})
export class ConsoleModule {}
