/** The console's only way to the server: same-origin fetch with the session cookie. */

export interface ErrorDetail {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly details: ErrorDetail[] = [],
    /** Seconds, from Retry-After on a 429. */
    public readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Listener = () => void;
const sessionEndedListeners: Listener[] = [];

/** Called when an authenticated call answers 401: the session expired or was ended. */
export function onSessionEnded(fn: Listener): void {
  sessionEndedListeners.push(fn);
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** A 401 is an answer here (sign-in), not an ended session. */
  expect401?: boolean;
}

function retryAfterOf(res: Response): number | null {
  const v = res.headers.get('Retry-After');
  if (!v || !/^\d+$/.test(v)) return null;
  return Number.parseInt(v, 10);
}

export async function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = {
    Accept: 'application/json',
    // Every session request sends it; the server refuses changes without it (CSRF).
    'X-Requested-With': 'console',
    ...opts.headers,
  };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch {
    throw new ApiError(
      0,
      'network',
      'The service could not be reached. Check your connection and try again.',
    );
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (res.ok) return body as T;
  const err = (body as { error?: { code?: string; message?: string; details?: ErrorDetail[] } })
    ?.error;
  const apiError = new ApiError(
    res.status,
    err?.code ?? 'error',
    err?.message ?? `The request failed (${res.status}).`,
    err?.details ?? [],
    retryAfterOf(res),
  );
  if (res.status === 401 && !opts.expect401) for (const fn of sessionEndedListeners) fn();
  throw apiError;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown, headers?: Record<string, string>) =>
  call<T>('POST', path, { body: body ?? {}, headers });

/** A sentence a person can act on, for any error. */
export function describeError(e: unknown): string {
  if (!(e instanceof ApiError)) return 'Something went wrong. Try again.';
  if (e.status === 429) {
    return e.retryAfter !== null
      ? `Too many attempts. Try again in ${e.retryAfter} second${e.retryAfter === 1 ? '' : 's'}.`
      : 'Too many attempts. Wait a minute and try again.';
  }
  if (e.code === 'account_suspended')
    return 'This account is suspended: you can see everything, but not change anything.';
  if (e.code === 'payments_not_configured') return 'Payments are not set up on this service yet.';
  if (e.status === 0) return e.message;
  if (e.status >= 500) return 'The service had a problem. Try again in a moment.';
  if (e.details.length > 0) return e.details.map((d) => capitalize(d.message)).join(' ');
  return capitalize(e.message.endsWith('.') ? e.message : `${e.message}.`);
}

const capitalize = (s: string): string => (s ? s[0].toUpperCase() + s.slice(1) : s);

// --- Shapes of the API answers the console reads -------------------------------------------

export interface Me {
  id: string;
  name: string;
  email: string | null;
  status: 'active' | 'suspended';
  balance: string;
  held: string;
  available: string;
  creditLimit: string;
  currency: 'USD';
}

export interface Session {
  email: string;
  expiresAt: string;
  account: Me;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface Token {
  id: string;
  name: string;
  group: string;
  keyPrefix: string;
  status: 'active' | 'revoked';
  expiresAt: string | null;
  spendLimit: string | null;
  spent: string;
  held?: string;
  allowedModels: string[] | null;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface Group {
  name: string;
  ratio: string;
  description: string;
  isDefault: boolean;
}

export interface Model {
  model: string;
}

export interface UsageItem {
  requestId: string;
  tokenId: string;
  tokenName: string;
  model: string;
  outcome: string;
  reason: string | null;
  charge: string;
  group: string;
  ratio: string;
  occurredAt: string;
  recordedAt: string;
}

export interface SummaryRow {
  key: string;
  requests: number;
  charged: number;
  skipped: number;
  charge: string;
}

export interface Summary {
  rows: SummaryRow[];
  totals: Omit<SummaryRow, 'key'>;
}

export interface Promotion {
  id: string;
  name: string;
  rate: string;
  minCredit: string;
  endsAt: string | null;
}

export interface TopUpPrice {
  credit: string;
  price: string;
  promotion: Promotion | null;
}

export interface TopUp {
  id: string;
  status: string;
  credit: string;
  price: string;
  promotion: { id: string; name: string; rate: string } | null;
  checkoutUrl: string | null;
  refundedCredit?: string;
  disputedCredit?: string;
  createdAt: string;
  paidAt: string | null;
}

export interface Statement {
  period: string;
  openingBalance: string;
  topUps: { count: number; credit: string; cashPaid: string };
  redemptions?: { count: number; credit: string };
  usage: {
    requests: number;
    charged: number;
    skipped: number;
    review: number;
    charge: string;
    byModel: {
      model: string;
      requests: number;
      charged: number;
      skipped: number;
      charge: string;
    }[];
  };
  refunds: string;
  disputes?: string | { count?: number; amount?: string; net?: string };
  adjustments: string;
  closingBalance: string;
}
