import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app.config.js';
import { dataSourceOptions, runMigrations } from './data-source.js';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) => {
        const db = config.get('database', { infer: true });
        // Statements wait at most a second for a row lock; a usage event written alone waits
        // up to LOCK_TIMEOUT_MS (UsageService).
        return dataSourceOptions({ ...db, lockTimeoutMs: Math.min(1000, db.lockTimeoutMs) });
      },
      // Migrations run before any provider can touch the database, under an advisory lock
      // so that several instances starting at once do not race each other.
      // A migration may rewrite a large table, so it runs on a connection of its own without
      // the pool's lock and statement timeouts.
      dataSourceFactory: async (options) => {
        if (!options) throw new Error('no database options');
        const migrator = await new DataSource({ ...options, extra: { max: 2 } }).initialize();
        try {
          await runMigrations(migrator);
        } finally {
          await migrator.destroy();
        }
        return new DataSource(options).initialize();
      },
    }),
  ],
})
export class DatabaseModule {}
