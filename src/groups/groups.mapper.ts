import { formatRatio } from '../common/money/money.js';
import type { GroupDto } from './dto/group.dto.js';
import type { Group } from './groups.repository.js';

export const toGroupDto = (g: Group): GroupDto => ({
  name: g.name,
  ratio: formatRatio(g.ratio),
  description: g.description,
  selectable: g.selectable,
  isDefault: g.isDefault,
  createdAt: g.createdAt.toISOString(),
  updatedAt: g.updatedAt.toISOString(),
});
