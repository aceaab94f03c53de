import { createDataSource } from '../database/data-source.js';
import { reconcile } from './reconcile.js';

/** `npm run reconcile`: exits 1 and names every account whose books do not balance. */
async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('reconcile: set DATABASE_URL to the database to check\n');
    process.exit(2);
  }
  const ds = await createDataSource(url, 2).initialize();
  try {
    const { accounts, problems } = await reconcile(ds);
    if (problems.length === 0) {
      process.stdout.write(
        `reconcile: ok (${accounts} accounts: balance = sum of ledger; every charged event booked once)\n`,
      );
      return;
    }
    for (const p of problems)
      process.stdout.write(`MISMATCH account ${p.accountId} ${p.check}: ${p.detail}\n`);
    process.stdout.write(
      `reconcile: ${problems.length} problem(s) in ${new Set(problems.map((p) => p.accountId)).size} account(s)\n`,
    );
    process.exitCode = 1;
  } finally {
    await ds.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`reconcile failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
