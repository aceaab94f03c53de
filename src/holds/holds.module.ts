import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import {
  AdminHoldsController,
  GatewayHoldsController,
  MyHoldsController,
} from './holds.controller.js';
import { HoldsRepository } from './holds.repository.js';
import { HoldsService } from './holds.service.js';
import { HoldsSweeper } from './holds.sweeper.js';

@Module({
  imports: [AccountsModule],
  controllers: [GatewayHoldsController, MyHoldsController, AdminHoldsController],
  providers: [HoldsRepository, HoldsService, HoldsSweeper],
  exports: [HoldsService],
})
export class HoldsModule {}
