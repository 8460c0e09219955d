import { canonicalJson, sha256Hex } from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import type { AuditFilter } from './audit-entry.repository';

/** Longest cursor this service ever mints, with room; anything longer is refused unread. */
const MAX_CURSOR_LENGTH = 256;

/** A short digest of the filters, so a cursor replayed with other filters is refused. */
function filterKey(filter: AuditFilter): string {
  return sha256Hex(canonicalJson(filter)).slice(0, 16);
}

/** Opaque to callers (base64url JSON): the last seq returned and the filters it belongs to. */
export function encodeCursor(filter: AuditFilter, afterSeq: number): string {
  return Buffer.from(JSON.stringify({ v: 1, s: afterSeq, f: filterKey(filter) })).toString(
    'base64url',
  );
}

/**
 * Reads a cursor back, refusing anything this service did not mint for this very query.
 * `field` is the parameter name the caller used (`cursor` over REST, `page_token` over gRPC).
 */
export function decodeCursor(cursor: string, filter: AuditFilter, field: string): number {
  const foreign = () => invalidArgument(field, 'is not a cursor this service issued');
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw foreign();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw foreign();
  }
  const c = parsed as { v?: unknown; s?: unknown; f?: unknown } | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    c.v !== 1 ||
    typeof c.s !== 'number' ||
    !Number.isSafeInteger(c.s) ||
    c.s < 0 ||
    typeof c.f !== 'string'
  )
    throw foreign();
  if (c.f !== filterKey(filter))
    throw invalidArgument(field, 'belongs to a query with different filters');
  return c.s;
}
