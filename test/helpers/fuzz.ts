/**
 * The contract's error body check, shared by the fuzz (test/fuzz/) and the webhook abuse
 * tests. The rest of the fuzz lives in test/fuzz/: a seeded generator and the hostile values
 * (JSON with literals JSON.stringify cannot write: 1e400, -0, 2^53+1) in context.ts and
 * generators.ts, the fingerprint of every table that proves a rejected request wrote nothing
 * in runner.ts.
 */

const STACK_SIGNS = [
  /\n\s+at /,
  /\bat [\w$.<>]+ \(/,
  /\.(ts|js|mjs|cjs):\d+/,
  /\/work\//,
  /node_modules/,
  /\/src\//,
  /QueryFailedError|TypeError|RangeError|ReferenceError|SyntaxError:/,
];

/**
 * Why an error response breaks the contract (`{ error: { code, message, details? } }`, no
 * stack trace), or null when it keeps it.
 */
export function contractViolation(status: number, body: unknown, text: string): string | null {
  if (status < 400) return null;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return `body is not a JSON object: ${text.slice(0, 200)}`;
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys ${JSON.stringify(keys)}`;
  const err = (body as { error: unknown }).error;
  if (err === null || typeof err !== 'object' || Array.isArray(err))
    return 'error is not an object';
  const e = err as Record<string, unknown>;
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'details'].includes(k));
  if (extra.length > 0) return `error has extra keys ${JSON.stringify(extra)}`;
  if (typeof e.code !== 'string' || e.code === '') return 'error.code is not a string';
  if (typeof e.message !== 'string') return 'error.message is not a string';
  if (e.details !== undefined) {
    if (!Array.isArray(e.details)) return 'error.details is not an array';
    for (const d of e.details as unknown[]) {
      if (d === null || typeof d !== 'object') return 'a detail is not an object';
      const dk = Object.keys(d).sort();
      if (dk.join(',') !== 'field,message') return `a detail has keys ${JSON.stringify(dk)}`;
      const { field, message } = d as { field: unknown; message: unknown };
      if (typeof field !== 'string' || typeof message !== 'string')
        return 'a detail field/message is not a string';
    }
  }
  if (status === 400 && e.code === 'validation_failed') {
    const details = e.details as { field: string }[] | undefined;
    if (!details || details.length === 0 || !details.some((d) => d.field.length > 0))
      return '400 validation_failed without details naming a field';
  }
  for (const re of STACK_SIGNS)
    if (re.test(text)) return `looks like a stack trace or path (${re})`;
  return null;
}
