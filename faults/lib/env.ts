/** Constants (paths of the built service and CLI, the results folder), Dec, env knobs, logging. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decimal } from 'decimal.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/faults/lib
export const ROOT = resolve(HERE, '..', '..', '..');
export const MAIN_JS = join(ROOT, 'dist', 'src', 'main.js');
export const RECONCILE_JS = join(ROOT, 'dist', 'src', 'statements', 'reconcile-cli.js');
/** Git-ignore this folder: service logs and soak.json land here. */
export const RESULTS_DIR = join(ROOT, 'faults', 'results');

/** Decimal with room for every digit a balance can hold (numeric(38,10)). */
export const Dec = Decimal.clone({ precision: 80, rounding: Decimal.ROUND_HALF_UP });
export type Dec = Decimal;
export const ZERO: Dec = new Dec(0);

export const envInt = (name: string, dflt: number): number => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function makeLogger(tag: string): (m: string) => void {
  return (m: string): void => {
    process.stdout.write(`[${tag} ${new Date().toISOString().slice(11, 23)}] ${m}\n`);
  };
}
