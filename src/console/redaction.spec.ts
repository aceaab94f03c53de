import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { REDACT } from '../common/logging/logger.js';

describe('console secrets in logs', () => {
  it('never writes a session cookie, sent or set, to a log line', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ redact: { paths: REDACT, censor: '[redacted]' } }, sink);
    log.info({
      req: { headers: { cookie: 'console_session=sent-session-token' } },
      res: { headers: { 'set-cookie': 'console_session=new-session-token; HttpOnly' } },
    });
    const out = lines.join('');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain('sent-session-token');
    expect(out).not.toContain('new-session-token');
  });
});
