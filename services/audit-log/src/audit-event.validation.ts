import { HcpError, type AuditEntry } from '@hcp/core';
import {
  AUDIT_TEXT_ESCAPED,
  AUDIT_TEXT_HEADER,
  mapAuditEntryText,
  unescapeAuditText,
  type BusHeaders,
} from '@hcp/platform';
import { audit, auditEntryFromProto } from '@hcp/proto';

/**
 * The only length bounds at ingest: the two ids with a plain btree index (the entry id's unique
 * index, the decision id's) cannot index a value much over 2 KB, and both are minted by HCP's own
 * services, never taken from a caller. Every other string is stored however long it is (the event
 * size the bus delivers is the bound) and whatever it contains (stored-text.ts).
 */
export const INGEST_LIMITS = {
  idLength: 256,
} as const;

/** A decoded, valid event, or why it cannot be an entry (with whatever identified it). */
export type ParsedAuditEvent =
  | { readonly ok: true; readonly entry: AuditEntry; readonly source: string }
  | {
      readonly ok: false;
      readonly reason: string;
      /** The event's ids as far as it decoded, so its refusal record can be found by them. */
      readonly known: Partial<AuditEntry>;
      readonly source?: string;
    };

/** What a refusal record can say about an event that did not validate: the caller-facing ids. */
function knownFields(wire: NonNullable<audit.AuditEvent['entry']>): Partial<AuditEntry> {
  const known: { -readonly [K in keyof AuditEntry]?: AuditEntry[K] } = {};
  if (wire.id !== '') known.id = wire.id;
  if (wire.decisionId !== '' && wire.decisionId.length <= INGEST_LIMITS.idLength)
    known.decisionId = wire.decisionId;
  if (wire.principalId !== '') known.principalId = wire.principalId;
  if (wire.traceId !== '') known.traceId = wire.traceId;
  return known;
}

/**
 * Decodes and validates one AuditEvent payload. Everything the proto marks required is
 * required; seq, prev_hash and hash must be empty (audit-log assigns them); the two indexed ids
 * are bounded. An event marked escaped (a publisher's entry held a lone surrogate, which UTF-8
 * cannot carry) is unescaped to the values as recorded. Returns the reason as `<field>: <problem>`.
 */
export function parseAuditEvent(data: Uint8Array, headers: BusHeaders = {}): ParsedAuditEvent {
  const parsed = parseWire(data);
  if (headers[AUDIT_TEXT_HEADER] !== AUDIT_TEXT_ESCAPED) return parsed;
  if (parsed.ok)
    return {
      ok: true,
      entry: mapAuditEntryText(parsed.entry, unescapeAuditText),
      source: unescapeAuditText(parsed.source),
    };
  const known = parsed.known;
  return {
    ...parsed,
    known: {
      ...(known.id !== undefined ? { id: unescapeAuditText(known.id) } : {}),
      ...(known.decisionId !== undefined
        ? { decisionId: unescapeAuditText(known.decisionId) }
        : {}),
      ...(known.principalId !== undefined
        ? { principalId: unescapeAuditText(known.principalId) }
        : {}),
      ...(known.traceId !== undefined ? { traceId: unescapeAuditText(known.traceId) } : {}),
    },
  };
}

function parseWire(data: Uint8Array): ParsedAuditEvent {
  let event: audit.AuditEvent;
  try {
    event = audit.AuditEvent.decode(data);
  } catch (err: unknown) {
    return { ok: false, reason: `undecodable AuditEvent: ${(err as Error).message}`, known: {} };
  }
  const wire = event.entry;
  const source = event.source;
  const known = wire === undefined ? {} : knownFields(wire);
  const fail = (reason: string): ParsedAuditEvent => ({
    ok: false,
    reason,
    known,
    ...(source !== '' ? { source } : {}),
  });
  if (wire === undefined) return fail('entry: is required');
  if (source === '') return fail('source: is required');
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
  if (entry.id.length > INGEST_LIMITS.idLength)
    return fail(`entry.id: longer than ${INGEST_LIMITS.idLength} characters`);
  if (entry.decisionId.length > INGEST_LIMITS.idLength)
    return fail(`entry.decision_id: longer than ${INGEST_LIMITS.idLength} characters`);
  // timestamptz covers years 4713 BC to 294276 AD; keep to what Date can print as RFC 3339.
  if (entry.time < 0 || entry.time > Date.UTC(9999, 11, 31))
    return fail('entry.time: outside 1970..9999');
  return { ok: true, entry, source };
}
