import { invalidArgument } from '@hcp/platform';
import { LIMITS } from './grant-store.validation';

/** What a ListGrants page token remembers: the query it belongs to and the last id returned. */
export interface GrantCursor {
  readonly principalId: string;
  readonly includeInactive: boolean;
  readonly afterId: string;
}

/** Opaque to callers (base64url JSON); versioned so the format can change without misreading old tokens. */
export function encodePageToken(cursor: GrantCursor): string {
  return Buffer.from(
    JSON.stringify({ v: 1, p: cursor.principalId, i: cursor.includeInactive, a: cursor.afterId }),
  ).toString('base64url');
}

/**
 * Reads a page token back, refusing anything this service did not mint for
 * this very query: a token replayed against another principal or filter is an
 * input error, not a silently different page.
 */
export function decodePageToken(
  token: string,
  query: { principalId: string; includeInactive: boolean },
): GrantCursor {
  const field = 'pageToken';
  if (token.length > LIMITS.pageTokenLength || !/^[A-Za-z0-9_-]+$/.test(token))
    throw invalidArgument(field, 'is not a token this service issued');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidArgument(field, 'is not a token this service issued');
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    (parsed as { v?: unknown }).v !== 1 ||
    typeof (parsed as { p?: unknown }).p !== 'string' ||
    typeof (parsed as { i?: unknown }).i !== 'boolean' ||
    typeof (parsed as { a?: unknown }).a !== 'string' ||
    (parsed as { a: string }).a.length === 0
  )
    throw invalidArgument(field, 'is not a token this service issued');
  const { p, i, a } = parsed as { p: string; i: boolean; a: string };
  if (p !== query.principalId || i !== query.includeInactive)
    throw invalidArgument(field, 'belongs to a different principalId or includeInactive');
  return { principalId: p, includeInactive: i, afterId: a };
}

/** What a ListApprovals page token remembers: the principal filter ('' = all) and the last id returned. */
export interface ApprovalCursor {
  readonly principalId: string;
  readonly afterId: string;
}

/** Opaque like grant tokens, with its own kind tag so a grant token is never read as an approval one. */
export function encodeApprovalPageToken(cursor: ApprovalCursor): string {
  return Buffer.from(
    JSON.stringify({ v: 1, k: 'apr', p: cursor.principalId, a: cursor.afterId }),
  ).toString('base64url');
}

/** Reads a ListApprovals token back; one minted for another filter is an input error. */
export function decodeApprovalPageToken(
  token: string,
  query: { principalId: string },
): ApprovalCursor {
  const field = 'pageToken';
  if (token.length > LIMITS.pageTokenLength || !/^[A-Za-z0-9_-]+$/.test(token))
    throw invalidArgument(field, 'is not a token this service issued');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidArgument(field, 'is not a token this service issued');
  }
  const t = parsed as { v?: unknown; k?: unknown; p?: unknown; a?: unknown } | null;
  if (
    typeof t !== 'object' ||
    t === null ||
    t.v !== 1 ||
    t.k !== 'apr' ||
    typeof t.p !== 'string' ||
    typeof t.a !== 'string' ||
    t.a.length === 0
  )
    throw invalidArgument(field, 'is not a token this service issued');
  if (t.p !== query.principalId) throw invalidArgument(field, 'belongs to a different principalId');
  return { principalId: t.p, afterId: t.a };
}
