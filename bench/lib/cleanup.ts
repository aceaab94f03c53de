/**
 * The bench's cleanups (databases, service, connections), run last-registered first in one
 * pass shared by the normal end, a failure and a signal (whichever comes first).
 */
export class Cleanups {
  private readonly fns: (() => Promise<void>)[] = [];
  private cleaning: Promise<void> | null = null;
  /** Set once SIGINT or SIGTERM arrived: the cleanup and exit 130 are under way. */
  interrupted = false;

  constructor(private readonly log: (m: string) => void) {}

  /** Registers a cleanup; one registered after cleaning began (a signal mid-start) runs at once. */
  add(fn: () => Promise<void>): void {
    if (this.cleaning) void this.cleaning.then(() => this.runOne(fn));
    else this.fns.push(fn);
  }

  run(): Promise<void> {
    return (this.cleaning ??= (async () => {
      for (let fn = this.fns.pop(); fn; fn = this.fns.pop()) await this.runOne(fn);
    })());
  }

  /** On SIGINT or SIGTERM: clean up, then exit 130. Returns the function that stops listening. */
  trapSignals(): () => void {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (this.interrupted) return;
      this.interrupted = true;
      this.log(`${sig}: cleaning up`);
      void this.run().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }

  private async runOne(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.log(`cleanup failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
