import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { CatalogModule } from '../catalog/catalog.module.js';
import { AdminStatementsController, MyStatementsController } from './statements.controller.js';
import { StatementsRepository } from './statements.repository.js';
import { StatementsService } from './statements.service.js';
import { UsageViewsRepository } from './usage-views.repository.js';
import { UsageViewsService } from './usage-views.service.js';

/** Customer ledger, usage views, CSV export, summaries and monthly statements (read-only). */
@Module({
  imports: [AccountsModule, CatalogModule],
  controllers: [MyStatementsController, AdminStatementsController],
  providers: [StatementsRepository, StatementsService, UsageViewsRepository, UsageViewsService],
})
export class StatementsModule {}
