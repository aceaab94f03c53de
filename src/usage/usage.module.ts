import { Module } from '@nestjs/common';
import { CatalogModule } from '../catalog/catalog.module.js';
import { LedgerModule } from '../ledger/ledger.module.js';
import { TokensModule } from '../tokens/tokens.module.js';
import { IngestQueue } from './ingest-queue.js';
import { UsageReviewsController } from './usage-reviews.controller.js';
import { UsageReviewsRepository } from './usage-reviews.repository.js';
import { UsageReviewsService } from './usage-reviews.service.js';
import { UsageController } from './usage.controller.js';
import { UsageIngestService } from './usage-ingest.service.js';
import { UsagePartitions } from './usage-partitions.js';
import { UsageRepository } from './usage.repository.js';
import { UsageService } from './usage.service.js';

@Module({
  imports: [LedgerModule, TokensModule, CatalogModule],
  controllers: [UsageController, UsageReviewsController],
  providers: [
    UsageRepository,
    UsageService,
    IngestQueue,
    UsageIngestService,
    UsageReviewsRepository,
    UsageReviewsService,
    UsagePartitions,
  ],
  exports: [UsageService],
})
export class UsageModule {}
