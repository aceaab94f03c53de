import { spawn } from 'node:child_process';
import { RECONCILE_JS, ROOT } from './env.js';

/** Runs `node dist/src/statements/reconcile-cli.js` on the database, as `npm run reconcile` does. */
export function runReconcile(url: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [RECONCILE_JS], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output: output.trim() });
    });
  });
}
