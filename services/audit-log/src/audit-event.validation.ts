import { HcpError, type AuditEntry } from '@hcp/core';
import { audit, auditEntryFromProto } from '@hcp/proto';

/** Bounds on what one event may carry; an event over them is a reject, not a truncated entry. */
export const INGEST_LIMITS = {
  idLength: 256,
  sourceLength: 128,
  textLength: 65_536,
  handleIds: 1024,
} as const;

/** A decoded, valid event, or why it cannot be stored (with whatever identified it). */
export type ParsedAuditEvent =
  | { readonly ok: true; readonly entry: AuditEntry; readonly source: string }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly entryId?: string;
      readonly source?: string;
    };

const ID_LIKE = [
  'id',
  'decisionId',
  'principalId',
  'capabilityId',
  'matchedGrantId',
  'approvalId',
  'traceId',
  'check',
  'rule',
] as const;
const TEXT_FIELDS = ['resourceRaw', 'resourceCanonical', 'missingGrant'] as const;

/** PostgreSQL text and jsonb cannot hold U+0000; such an event would fail its insert forever. */
const hasNul = (s: string) => s.includes('\u0000');

function checkString(field: string, value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined;
  const name = `entry.${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
  if (value.length > max) return `${name}: longer than ${max} characters`;
  if (hasNul(value)) return `${name}: contains a NUL character`;
  return undefined;
}

/**
 * Decodes and validates one AuditEvent payload. Everything the proto marks required is
 * required; seq, prev_hash and hash must be empty (audit-log assigns them); strings are
 * bounded and storable. Returns the reason as `<field>: <problem>`.
 */
export function parseAuditEvent(data: Uint8Array): ParsedAuditEvent {
  let event: audit.AuditEvent;
  try {
    event = audit.AuditEvent.decode(data);
  } catch (err: unknown) {
    return { ok: false, reason: `undecodable AuditEvent: ${(err as Error).message}` };
  }
  const wire = event.entry;
  const source = event.source;
  const known = {
    ...(wire !== undefined && wire.id !== '' ? { entryId: wire.id.slice(0, 256) } : {}),
    ...(source !== '' ? { source: source.slice(0, 128) } : {}),
  };
  const fail = (reason: string): ParsedAuditEvent => ({ ok: false, reason, ...known });
  if (wire === undefined) return fail('entry: is required');
  if (source === '') return fail('source: is required');
  if (source.length > INGEST_LIMITS.sourceLength || hasNul(source))
    return fail(`source: must be at most ${INGEST_LIMITS.sourceLength} characters, without NUL`);
  if (wire.seq !== 0) return fail('entry.seq: must be left unset (audit-log assigns it)');
  if (wire.prevHash !== '')
    return fail('entry.prev_hash: must be left empty (audit-log assigns it)');
  if (wire.hash !== '') return fail('entry.hash: must be left empty (audit-log assigns it)');
  let entry: AuditEntry;
  try {
    entry = auditEntryFromProto(wire);
  } catch (err: unknown) {
    if (err instanceof HcpError) return fail(err.message);
    throw err;
  }
  for (const f of ID_LIKE) {
    const problem = checkString(f, entry[f], INGEST_LIMITS.idLength);
    if (problem !== undefined) return fail(problem);
  }
  for (const f of TEXT_FIELDS) {
    const problem = checkString(f, entry[f], INGEST_LIMITS.textLength);
    if (problem !== undefined) return fail(problem);
  }
  if (entry.handleIds.length > INGEST_LIMITS.handleIds)
    return fail(`entry.handle_ids: more than ${INGEST_LIMITS.handleIds} ids`);
  for (const [i, h] of entry.handleIds.entries()) {
    const problem = checkString(`handle_ids[${i}]`, h, INGEST_LIMITS.idLength);
    if (problem !== undefined) return fail(problem);
  }
  // timestamptz covers years 4713 BC to 294276 AD; keep to what Date can print as RFC 3339.
  if (entry.time < 0 || entry.time > Date.UTC(9999, 11, 31))
    return fail('entry.time: outside 1970..9999');
  return { ok: true, entry, source };
}
