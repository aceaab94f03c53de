import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { REDACT } from './logger.js';

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
