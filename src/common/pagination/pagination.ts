import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { invalid } from '../errors/domain-error.js';
import { isUuid } from '../ids.js';

export class ListQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;

  @ApiPropertyOptional({ description: 'Opaque cursor from a previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

/** Keyset position: the sort key values of the last row returned, as text. */
export type CursorKey = string[];

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** What each position of a keyset cursor holds, checked before it reaches SQL. */
export type CursorKind = 'timestamp' | 'uuid' | 'int' | 'name' | 'text';

const CURSOR_CHECKS: Record<CursorKind, (v: string) => boolean> = {
  // PostgreSQL's timestamptz text, as the lists emit it (microseconds kept).
  timestamp: (v) =>
    /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:?\d{2})?|Z)?$/.test(v) &&
    !Number.isNaN(Date.parse(v.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00'))),
  uuid: isUuid,
  int: (v) => /^\d{1,18}$/.test(v),
  name: (v) => /^[A-Za-z0-9_-]{1,64}$/.test(v),
  text: (v) => v.length <= 256,
};

export function decodeCursor(
  cursor: string | undefined,
  kinds: readonly CursorKind[],
): CursorKey | null {
  if (cursor === undefined) return null;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === kinds.length &&
      parsed.every((v, i) => typeof v === 'string' && CURSOR_CHECKS[kinds[i]](v))
    ) {
      return parsed as string[];
    }
  } catch {
    // fall through
  }
  throw invalid('cursor', 'is not a cursor this list returned');
}

export const DEFAULT_LIMIT = 50;

/**
 * Rows are fetched with limit + 1; the extra row only says whether another page exists.
 */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  key: (row: R) => CursorKey,
  map: (row: R) => T,
): Page<T> {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { data: pageRows.map(map), nextCursor: more && last ? encodeCursor(key(last)) : null };
}
