import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { errText, makeLogger, RESULTS_DIR } from './env.js';

// ---- harness -------------------------------------------------------------------------------

export interface Harness {
  log: (m: string) => void;
  /** Registers a cleanup; they run last-in first-out at the end, on failure or on a signal. */
  onCleanup(fn: () => Promise<void> | void): void;
  /** A folder under faults/results for this run's logs. */
  outDir: string;
}

/**
 * Runs `main` (true = passed) with cleanups on every path, a hard time limit, and exits with
 * 0 (passed), 1 (a check failed) or 2 (the test itself broke).
 */
export function runMain(
  name: string,
  limitSeconds: number,
  main: (h: Harness) => Promise<boolean>,
): void {
  const log = makeLogger(name);
  const outDir = join(RESULTS_DIR, name);
  mkdirSync(outDir, { recursive: true });
  const cleanups: (() => Promise<void> | void)[] = [];
  let cleaning: Promise<void> | null = null;
  let finished = false;
  const runCleanups = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (let fn = cleanups.pop(); fn; fn = cleanups.pop()) {
        try {
          await fn();
        } catch (e) {
          log(`cleanup failed: ${errText(e)}`);
        }
      }
    })());
  const finish = (code: number): void => {
    if (finished) return;
    finished = true;
    void runCleanups().finally(() => process.exit(code));
  };
  const h: Harness = {
    log,
    outDir,
    onCleanup: (fn) => {
      if (cleaning) void cleaning.then(fn);
      else cleanups.push(fn);
    },
  };
  process.once('SIGINT', () => {
    log('SIGINT: cleaning up');
    finish(130);
  });
  process.once('SIGTERM', () => {
    log('SIGTERM: cleaning up');
    finish(130);
  });
  const timer = setTimeout(() => {
    log(`FAILED: the test did not finish within ${limitSeconds} s`);
    finish(2);
  }, limitSeconds * 1000);
  timer.unref();
  main(h).then(
    (ok) => finish(ok ? 0 : 1),
    (err: unknown) => {
      if (finished) return;
      process.stderr.write(
        `${name} broke: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      finish(2);
    },
  );
}
