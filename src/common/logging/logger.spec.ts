import { describe, expect, it } from '@jest/globals';
import { fastify } from 'fastify';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { requestContext, requestId } from '../http/request-context.js';
import { accessLog, PinoNestLogger, REDACT } from './logger.js';

describe('log redaction', () => {
  it('never writes an Authorization, Stripe-Signature or Idempotency-Key header to a log line', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ redact: { paths: REDACT, censor: '[redacted]' } }, sink);
    log.info({
      req: {
        headers: {
          authorization: 'Bearer ck_super_secret_value',
          'stripe-signature': 't=1,v1=abcdef',
          'idempotency-key': 'key-123',
        },
      },
    });
    const out = lines.join('');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain('ck_super_secret_value');
    expect(out).not.toContain('v1=abcdef');
    expect(out).not.toContain('key-123');
  });
});

describe('access log', () => {
  const capture = () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    return { lines, log: pino({ redact: { paths: REDACT, censor: '[redacted]' } }, sink) };
  };

  it('writes one line per request with its id, method, path, status and time, and no header', async () => {
    const { lines, log } = capture();
    const app = fastify({ genReqId: requestId });
    app.addHook('onRequest', requestContext);
    app.addHook('onRequest', accessLog(log));
    app.get('/ok', () => ({ ok: true }));
    app.post('/boom', (_req, reply) => reply.code(503).send({ error: 'busy' }));
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const ok = await fetch(`${address}/ok?limit=5`, {
        headers: { 'X-Request-Id': 'req-1', Authorization: 'Bearer sk-secret-value' },
      });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-request-id')).toBe('req-1');
      const boom = await fetch(`${address}/boom`, { method: 'POST' });
      expect(boom.status).toBe(503);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      await app.close();
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request completed',
      reqId: 'req-1',
      req: { method: 'GET', url: '/ok?limit=5' },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
    expect(lines[1]).toMatchObject({
      level: 50,
      msg: 'request errored',
      reqId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      req: { method: 'POST', url: '/boom' },
      res: { statusCode: 503 },
    });
    expect(JSON.stringify(lines)).not.toContain('sk-secret-value');
  });

  it('lets a Nest log line carry fields of its own, such as the request id of an error', () => {
    const { lines, log } = capture();
    const nest = new PinoNestLogger(log);
    nest.error({ msg: 'Error: broken', reqId: 'req-9' }, 'stack here', 'Errors');
    nest.warn('plain words', 'Ctx');
    expect(lines[0]).toMatchObject({
      level: 50,
      msg: 'Error: broken',
      reqId: 'req-9',
      trace: 'stack here',
      context: 'Errors',
    });
    expect(lines[1]).toMatchObject({ level: 40, msg: 'plain words', context: 'Ctx' });
  });
});
