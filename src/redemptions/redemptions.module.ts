import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { LedgerModule } from '../ledger/ledger.module.js';
import {
  AdminRedemptionCodesController,
  MyRedemptionsController,
} from './redemptions.controller.js';
import { RedemptionsRepository } from './redemptions.repository.js';
import { RedemptionsService } from './redemptions.service.js';

/** Prepaid redemption codes that resellers sell: batches made by admins, redeemed by customers. */
@Module({
  imports: [LedgerModule, AccountsModule],
  controllers: [AdminRedemptionCodesController, MyRedemptionsController],
  providers: [RedemptionsRepository, RedemptionsService],
})
export class RedemptionsModule {}
