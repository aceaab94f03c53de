import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createTestApp, TestApp } from './test-app.js';

/**
 * Helpers of the console tests: the built web/ app, the service on a real port (browsers
 * need one), HTTP calls from chosen loopback addresses (the sign-in throttle counts per
 * address) and Debian's Chromium driven by playwright-core.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const WEB = join(ROOT, 'web');
const DIST_INDEX = join(WEB, 'dist', 'index.html');

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((n) => newestMtime(join(path, n))));
}

/** Builds web/ (vite) when web/dist is missing or older than a source file; once at a time. */
export function ensureConsoleBuilt(): void {
  const sources = Math.max(
    newestMtime(join(WEB, 'src')),
    newestMtime(join(WEB, 'public')),
    newestMtime(join(WEB, 'index.html')),
    newestMtime(join(WEB, 'vite.config.ts')),
  );
  if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs >= sources) return;
  const lock = join(WEB, '.build-lock');
  const until = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock left by a killed run (older than any build takes) is taken over.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 120_000) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > until) throw new Error(`web build lock ${lock} is stuck; remove it`);
      execFileSync('sleep', ['0.2']);
    }
  }
  try {
    if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs >= sources) return;
    execFileSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'web'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface ConsoleApp {
  t: TestApp;
  /** http://127.0.0.1:<port>, also the PUBLIC_BASE_URL unless `env` sets one. */
  baseUrl: string;
  close(): Promise<void>;
}

/** The whole app (createTestApp) listening on 127.0.0.1, with the console built first. */
export async function startConsoleApp(env: Record<string, string> = {}): Promise<ConsoleApp> {
  ensureConsoleBuilt();
  const port = await getPort({ host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${port}`;
  const t = await createTestApp({ PUBLIC_BASE_URL: baseUrl, ...env });
  await t.app.listen(port, '127.0.0.1');
  return { t, baseUrl, close: () => t.close() };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** The loopback address to call from (127.0.0.1 unless given): what the server sees as req.ip. */
  from?: string;
  /** A `name=value` cookie to send. */
  cookie?: string;
  /** Adds X-Requested-With: console (what the console sends); default true. */
  csrf?: boolean;
}

/** One HTTP call to the running app, from a chosen loopback address. */
export function call(
  baseUrl: string,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<HttpResult> {
  const url = new URL(path, baseUrl);
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.csrf !== false) headers['X-Requested-With'] = 'console';
  if (opts.cookie) headers.Cookie = opts.cookie;
  return new Promise((resolveCall, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers,
        localAddress: opts.from ?? '127.0.0.1',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            body = null;
          }
          resolveCall({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** The Set-Cookie header values of a response. */
export function setCookies(res: HttpResult): string[] {
  const v = res.headers['set-cookie'];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** `console_session=<token>` from a response that set it, for the next calls. */
export function sessionCookieOf(res: HttpResult): string {
  const c = setCookies(res).find((s) => s.startsWith('console_session='));
  if (!c) throw new Error(`no session cookie in the response (${res.status} ${res.text})`);
  return c.split(';')[0];
}

let addressCounter = 0;
/** A fresh loopback address (127.0.0.10 and up), so per-address limits do not add up. */
export function nextAddress(): string {
  addressCounter += 1;
  return `127.0.${Math.floor(addressCounter / 200)}.${10 + (addressCounter % 200)}`;
}

export interface SignedUp {
  accountId: string;
  email: string;
  password: string;
  cookie: string;
}

/** POST /v1/console/sign-up from a fresh address, expecting 201. */
export async function signUp(
  app: ConsoleApp,
  name: string,
  email: string,
  password = 'correct horse battery staple',
): Promise<SignedUp> {
  const res = await call(app.baseUrl, 'POST', '/v1/console/sign-up', {
    body: { name, email, password },
    from: nextAddress(),
  });
  if (res.status !== 201) throw new Error(`sign-up answered ${res.status}: ${res.text}`);
  return {
    accountId: res.body.account.id as string,
    email: res.body.email as string,
    password,
    cookie: sessionCookieOf(res),
  };
}

/** The flags the design note asks for; a fresh --user-data-dir comes with each launch. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  newPage(width?: number, height?: number): Promise<Page>;
  close(): Promise<void>;
}

/** Debian's Chromium (CHROMIUM_PATH or /usr/bin/chromium), headless, in a throw-away profile. */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    async newPage(width = 1440, height = 900) {
      const page = await context.newPage();
      await page.setViewportSize({ width, height });
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
