export const BASE = '/console';

/** The console path of a location ("/console/tokens" → "/tokens", "/console/" → "/"). */
export function consolePath(pathname: string): string {
  const p = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** The URL of a console path, query kept ("/usage?x=1" → "/console/usage?x=1"). */
export function href(path: string): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? '' : path.slice(q);
  return `${BASE}${p === '/' || p === '' ? '/' : p}${query}`;
}

/** Where to go after sign-in: a console path from ?next=, never another site. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/';
  if (/^\/(sign-in|sign-up|set-password)\b/.test(next)) return '/';
  return next;
}
