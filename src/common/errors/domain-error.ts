export type ErrorCode =
  | 'validation_failed'
  | 'invalid_json'
  | 'payload_too_large'
  | 'unauthorized'
  | 'forbidden'
  | 'account_suspended'
  | 'locked_by_admin'
  | 'not_found'
  | 'conflict'
  | 'idempotency_conflict'
  | 'too_many_pending'
  | 'invalid_code'
  | 'too_many_attempts'
  | 'payments_not_configured'
  | 'service_unavailable'
  | 'internal_error';

export interface ErrorDetail {
  field: string;
  message: string;
}

/** Services throw these; the global filter maps `code` to an HTTP status. */
export class DomainError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string): DomainError =>
  new DomainError('not_found', `${what} not found`);
export const conflict = (message: string): DomainError => new DomainError('conflict', message);
export const invalid = (field: string, message: string): DomainError =>
  new DomainError('validation_failed', `${field}: ${message}`, [{ field, message }]);

export function statusOf(code: ErrorCode): number {
  switch (code) {
    case 'validation_failed':
    case 'invalid_json':
    case 'invalid_code':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
    case 'account_suspended':
    case 'locked_by_admin':
      return 403;
    case 'not_found':
      return 404;
    case 'conflict':
    case 'idempotency_conflict':
    case 'too_many_pending':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'too_many_attempts':
      return 429;
    case 'payments_not_configured':
    case 'service_unavailable':
      return 503;
    case 'internal_error':
      return 500;
  }
}
