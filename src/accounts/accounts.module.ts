import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger/ledger.module.js';
import { AdminAccountsController, MeController } from './accounts.controller.js';
import { AccountsRepository } from './accounts.repository.js';
import { AccountsService } from './accounts.service.js';
import { AdjustmentsRepository } from './adjustments.repository.js';
import { AdjustmentsService } from './adjustments.service.js';

@Module({
  imports: [LedgerModule],
  controllers: [AdminAccountsController, MeController],
  providers: [AccountsRepository, AccountsService, AdjustmentsRepository, AdjustmentsService],
  exports: [AccountsService, AdjustmentsService],
})
export class AccountsModule {}
