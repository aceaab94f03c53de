import { Module } from '@nestjs/common';

/** Customer ledger, usage views, CSV export, summaries and monthly statements. */
@Module({})
export class StatementsModule {}
