import { sql, type Kysely } from 'kysely';
import type { AuditEntry, Principal } from '@hcp/core';
import { audit } from '@hcp/proto';
import {
  AUDIT_BATCH_SUBJECT,
  AUDIT_TEXT_ESCAPED,
  AUDIT_TEXT_HEADER,
  auditEventMessage,
  auditSubject,
  ensureAuditStream,
  mintToken,
  type EventBus,
} from '@hcp/platform';
import { eventually } from '@hcp/platform/testing';
import type { AuditDb } from '../database';

/** Issuer, audience and secret the unit specs (and the lead's suites, if they like) sign with. */
export const TEST_AUTH = {
  issuer: 'https://hcp.test/issuer',
  audience: 'hcp-audit',
  hs256Secret: 'audit-log-test-secret-of-32-bytes-or-more',
} as const;

/** A principal of each kind. */
export const OPERATOR: Principal = { id: 'op-alice', kind: 'operator' };
export const AGENT: Principal = { id: 'agent-7', kind: 'agent' };

/** An `Authorization` header value for a principal, signed with TEST_AUTH. */
export async function bearerFor(principal: Principal): Promise<string> {
  return `Bearer ${await mintToken(principal, TEST_AUTH)}`;
}

/** 2026-11-28T12:00:00Z. */
export const T0 = Date.UTC(2026, 10, 28, 12, 0, 0);

/** A valid entry numbered n (id `aud_test_<n>`, time T0 + n seconds); override any field. */
export function testEntry(n: number, over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: `aud_test_${String(n).padStart(5, '0')}`,
    time: T0 + n * 1000,
    decisionId: `dec_${n}`,
    principalId: 'agent-7',
    endpointFamily: 'tools/call',
    capabilityId: 'fs/read_file',
    resourceRaw: `./notes/${n}.txt`,
    resourceCanonical: `/srv/notes/${n}.txt`,
    outcome: 'allow',
    reason: 'ALLOWED',
    check: 'all',
    matchedGrantId: 'grt_1',
    handleIds: [],
    traceId: `trace-${n}`,
    ...over,
  };
}

/**
 * Publishes entries straight onto the audit stream, as a publisher would (msgId = entry id, an
 * entry with a lone surrogate escaped and marked).
 * `msgIdSuffix` makes the stream store a re-publish again, as it does once its de-duplication
 * window has passed, so the event reaches audit-log a second time.
 */
export async function publishEntries(
  bus: EventBus,
  entries: readonly AuditEntry[],
  options: { source?: string; msgIdSuffix?: string } = {},
): Promise<void> {
  await ensureAuditStream(bus);
  for (const e of entries) {
    const { data, headers } = auditEventMessage(e, options.source ?? 'test', Date.now());
    await bus.publishDurable(auditSubject(e.endpointFamily), data, {
      msgId: e.id + (options.msgIdSuffix ?? ''),
      headers,
    });
  }
}

/** One frame of an AuditEventBatch: an entry encoded as a publisher would, or raw event bytes. */
export function auditFrame(entry: AuditEntry | Uint8Array, source = 'test'): audit.AuditEventFrame {
  if (entry instanceof Uint8Array) return { event: Buffer.from(entry), textEscaped: false };
  const { data, headers } = auditEventMessage(entry, source, Date.now());
  return {
    event: Buffer.from(data),
    textEscaped: headers[AUDIT_TEXT_HEADER] === AUDIT_TEXT_ESCAPED,
  };
}

/**
 * Publishes one AuditEventBatch on `hcp.audit.batch` (msgId = batch id), as a batching publisher
 * would (ADR 0005 §1). A frame is an entry, or raw bytes to send as its event.
 */
export async function publishBatch(
  bus: EventBus,
  batchId: string,
  frames: readonly (AuditEntry | Uint8Array)[],
  options: { source?: string } = {},
): Promise<void> {
  await ensureAuditStream(bus);
  const data = audit.AuditEventBatch.encode({
    batchId,
    frames: frames.map((f) => auditFrame(f, options.source)),
  }).finish();
  await bus.publishDurable(AUDIT_BATCH_SUBJECT, data, { msgId: batchId });
}

/**
 * Simulates a DBA-level tamper: switches the append-only trigger off (as the table owner can),
 * rewrites one column of the entry at `seq`, and switches it back on. The chain must notice.
 */
export async function tamperWithEntry(
  db: Kysely<AuditDb>,
  seq: number,
  column: 'resource_canonical' | 'resource_raw' | 'hash' | 'prev_hash' | 'outcome' | 'principal_id',
  value: string,
): Promise<void> {
  await sql`alter table audit_entries disable trigger audit_entries_append_only`.execute(db);
  try {
    await sql`update audit_entries set ${sql.ref(column)} = ${value} where seq = ${seq}`.execute(
      db,
    );
  } finally {
    await sql`alter table audit_entries enable trigger audit_entries_append_only`.execute(db);
  }
}

/** Deletes the entry at `seq` behind the trigger's back (a removed row must show as a gap). */
export async function deleteEntry(db: Kysely<AuditDb>, seq: number): Promise<void> {
  await sql`alter table audit_entries disable trigger audit_entries_append_only`.execute(db);
  try {
    await sql`delete from audit_entries where seq = ${seq}`.execute(db);
  } finally {
    await sql`alter table audit_entries enable trigger audit_entries_append_only`.execute(db);
  }
}

/** Polls until `check` holds; fails naming `what` after timeoutMs. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  await eventually(check, what, timeoutMs);
}
