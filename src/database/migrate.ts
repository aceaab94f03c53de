import { createDataSource, runMigrations } from './data-source.js';
import { startLocalDatabase } from './resolve-database.js';

/** `npm run migration:run` (and `-- --revert` to undo the last one). */
async function main(): Promise<void> {
  // CLI tools read their one variable directly; the service reads only its typed config.
  const given = process.env.DATABASE_URL;
  const db = given
    ? { url: given, stop: undefined }
    : await startLocalDatabase((m) => process.stdout.write(`${m}\n`));
  const ds = createDataSource(db.url, 2);
  await ds.initialize();
  try {
    if (process.argv.includes('--revert')) {
      await ds.undoLastMigration({ transaction: 'all' });
      process.stdout.write('reverted the last migration\n');
    } else {
      const ran = await runMigrations(ds);
      process.stdout.write(ran.length ? `ran: ${ran.join(', ')}\n` : 'no pending migrations\n');
    }
  } finally {
    await ds.destroy();
    await db.stop?.();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
