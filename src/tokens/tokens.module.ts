import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { CatalogModule } from '../catalog/catalog.module.js';
import { GroupsModule } from '../groups/groups.module.js';
import { HoldsModule } from '../holds/holds.module.js';
import {
  AdminTokensController,
  GatewayController,
  MyTokensController,
} from './tokens.controller.js';
import { AuthorizeQueue } from './authorize-queue.js';
import { TokensRepository } from './tokens.repository.js';
import { TokensService } from './tokens.service.js';

@Module({
  imports: [AccountsModule, GroupsModule, CatalogModule, HoldsModule],
  controllers: [AdminTokensController, MyTokensController, GatewayController],
  providers: [TokensRepository, AuthorizeQueue, TokensService],
  exports: [TokensService],
})
export class TokensModule {}
