import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DatabaseConfig } from '../config/app.config.js';
import { dataSourceOptions, runMigrations } from './data-source.js';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => {
        const db = config.getOrThrow<DatabaseConfig>('database');
        return dataSourceOptions(db.url, db.poolSize);
      },
      // Migrations run before any provider can touch the database, under an advisory lock
      // so that several instances starting at once do not race each other.
      dataSourceFactory: async (options) => {
        if (!options) throw new Error('no database options');
        const ds = await new DataSource(options).initialize();
        await runMigrations(ds);
        return ds;
      },
    }),
  ],
})
export class DatabaseModule {}
