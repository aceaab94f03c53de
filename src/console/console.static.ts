import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

function pickEncoding(req: FastifyRequest, a: Asset): ['br' | 'gzip' | null, Buffer] {
  const accept = String(req.headers['accept-encoding'] ?? '');
  if (a.br && /\bbr\b/.test(accept)) return ['br', a.br];
  if (a.gzip && /\bgzip\b/.test(accept)) return ['gzip', a.gzip];
  return [null, a.raw];
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  reply.header('Content-Type', a.type);
  reply.header('Cache-Control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  reply.header('ETag', a.etag);
  reply.header('Vary', 'Accept-Encoding');
  reply.header('X-Content-Type-Options', 'nosniff');
  reply.header('Referrer-Policy', 'no-referrer');
  reply.header('X-Frame-Options', 'DENY');
  reply.header('Content-Security-Policy', CONSOLE_CSP);
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  const [encoding, body] = pickEncoding(req, a);
  if (encoding) reply.header('Content-Encoding', encoding);
  reply.header('Content-Length', String(body.length));
  // Fastify answers HEAD from this GET route: the same headers, no body.
  return reply.code(200).send(body);
}

/** The request's path, as sent (not decoded), without its query. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Serves the built console (web/dist) under /console: files as built, any other path without
 * a file extension gets index.html (the app routes in the browser). Also sends Stripe
 * Checkout's return links (/top-ups/{id}?checkout=...) to the console's top-up page.
 * GET and HEAD only: other methods find no route (the contract's 404).
 */
export function serveConsole(fastify: FastifyInstance, dir = findConsoleDist()): void {
  const assets = dir ? loadAssets(dir) : new Map<string, Asset>();
  const index = assets.get('/index.html');

  const serve = (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (!index) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The console is not built: run `npm run build` (or `npm start`, which builds).');
    }
    const full = pathOf(req.url);
    if (full === '/console') return reply.redirect('/console/', 301);
    // The path below /console, as the files are keyed ('/' for the console's root).
    const path = full.slice('/console'.length) || '/';
    const asset = assets.get(path);
    if (asset && path !== '/index.html') return send(req, reply, asset);
    if (extname(path) !== '') {
      return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    }
    return send(req, reply, index);
  };
  fastify.get('/console', serve);
  fastify.get('/console/*', serve);

  fastify.route({
    method: 'GET',
    url: '/top-ups/*',
    exposeHeadRoute: false,
    handler: (req, reply) => {
      const url = req.url;
      const m = /^\/top-ups\/([0-9a-fA-F-]{36})\/?$/i.exec(pathOf(url));
      if (!m) return reply.callNotFound();
      const q = url.indexOf('?');
      return reply.redirect(`/console/top-ups/${m[1]}${q < 0 ? '' : url.slice(q)}`, 302);
    },
  });
}
