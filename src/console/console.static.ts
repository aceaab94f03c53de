import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** The console is a static single-page app; everything it loads comes from this origin. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

interface Asset {
  type: string;
  etag: string;
  /** Fingerprinted file names never change content: cache them for a year. */
  immutable: boolean;
  raw: Buffer;
  gzip: Buffer | null;
  br: Buffer | null;
}

/** web/dist next to the sources (ts-jest) or next to the build (dist/src/console). */
export function findConsoleDist(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const dir = resolve(here, up, 'web', 'dist');
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full) : [full];
  });
}

/** Every built file, read once at start and compressed once, served from memory. */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const file of listFiles(dir)) {
    const path = `/${relative(dir, file).split(sep).join('/')}`;
    const raw = readFileSync(file);
    const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && raw.length > 512;
    assets.set(path, {
      type,
      etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 27)}"`,
      immutable: path.startsWith('/assets/'),
      raw,
      gzip: compressible ? gzipSync(raw, { level: 9 }) : null,
      br: compressible
        ? brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } })
        : null,
    });
  }
  return assets;
}

function pickEncoding(req: Request, a: Asset): ['br' | 'gzip' | null, Buffer] {
  const accept = String(req.headers['accept-encoding'] ?? '');
  if (a.br && /\bbr\b/.test(accept)) return ['br', a.br];
  if (a.gzip && /\bgzip\b/.test(accept)) return ['gzip', a.gzip];
  return [null, a.raw];
}

function send(req: Request, res: Response, a: Asset): void {
  res.setHeader('Content-Type', a.type);
  res.setHeader('Cache-Control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  res.setHeader('ETag', a.etag);
  res.setHeader('Vary', 'Accept-Encoding');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  if (req.headers['if-none-match'] === a.etag) {
    res.status(304).end();
    return;
  }
  const [encoding, body] = pickEncoding(req, a);
  if (encoding) res.setHeader('Content-Encoding', encoding);
  res.setHeader('Content-Length', String(body.length));
  res.status(200);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * Serves the built console (web/dist) under /console: files as built, any other path without
 * a file extension gets index.html (the app routes in the browser). Also sends Stripe
 * Checkout's return links (/top-ups/{id}?checkout=...) to the console's top-up page.
 */
export function serveConsole(app: NestExpressApplication, dir = findConsoleDist()): void {
  const assets = dir ? loadAssets(dir) : new Map<string, Asset>();
  const index = assets.get('/index.html');

  app.use('/console', (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    if (!index) {
      res
        .status(503)
        .type('text/plain')
        .send('The console is not built: run `npm run build` (or `npm start`, which builds).');
      return;
    }
    if (req.originalUrl.split('?')[0] === '/console') {
      res.redirect(301, '/console/');
      return;
    }
    const asset = assets.get(req.path);
    if (asset && req.path !== '/index.html') return send(req, res, asset);
    if (extname(req.path) !== '') {
      res.status(404).type('text/plain').send('not found');
      return;
    }
    send(req, res, index);
  });

  app.use('/top-ups', (req: Request, res: Response, next: NextFunction) => {
    const m = /^\/([0-9a-fA-F-]{36})\/?$/.exec(req.path);
    if (req.method !== 'GET' || !m) return next();
    const q = req.originalUrl.indexOf('?');
    res.redirect(302, `/console/top-ups/${m[1]}${q < 0 ? '' : req.originalUrl.slice(q)}`);
  });
}
