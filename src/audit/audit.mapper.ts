import type { AuditEntryDto } from './audit.dto.js';
import type { AuditRecord } from './audit.repository.js';

export const toAuditEntryDto = (r: AuditRecord): AuditEntryDto => ({
  id: r.id,
  actor: r.actor,
  action: r.action,
  target: r.target,
  before: r.before ?? null,
  after: r.after ?? null,
  at: r.at.toISOString(),
});
