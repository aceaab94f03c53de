import { formatExact } from '../common/money/money.js';
import type { HoldDto, ReleaseResultDto } from './dto/hold.dto.js';
import type { Hold } from './holds.repository.js';

export const toHoldDto = (h: Hold): HoldDto => ({
  requestId: h.requestId,
  tokenId: h.tokenId,
  model: h.model,
  amount: formatExact(h.amount),
  createdAt: h.createdAt.toISOString(),
  expiresAt: h.expiresAt.toISOString(),
});

/** The hold as read after its release: no longer active there, but the type allows it (released). */
export const toReleaseResultDto = (requestId: string, h: Hold): ReleaseResultDto => ({
  requestId,
  status: h.status === 'active' ? 'released' : h.status,
});
