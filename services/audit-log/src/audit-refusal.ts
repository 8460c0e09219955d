import type { AuditEntry, Decision, DenialSpec } from '@hcp/core';
import { refuse, type RefusalSubject } from '@hcp/policy';

/** A refusal audit-log made itself: what the caller is told, and the entry for audit-log's chain. */
export interface OwnRefusal {
  readonly decision: Decision;
  readonly entry: AuditEntry;
}

/**
 * Makes a refusal through the one refusal path (`refuse`: the denial factory and the entry
 * builder every service uses) and hands back the entry it recorded. audit-log does not publish
 * its own refusals to the audit stream: it is the chain's only writer, so it appends them straight
 * to its chain (AuditIngestService.appendOwn) and the entry is committed before the caller is
 * answered. A publisher would add a NATS round trip and leave the refusal unrecorded exactly when
 * the bus is down.
 */
export function ownRefusal(spec: DenialSpec, subject: RefusalSubject): OwnRefusal {
  const recorded: AuditEntry[] = [];
  const { decision } = refuse({ record: (e) => void recorded.push(e) }, spec, subject);
  const entry = recorded[0];
  // The sink above never throws, so refuse() always records exactly one entry.
  if (entry === undefined) throw new Error('refuse() recorded no entry');
  return { decision, entry };
}

/** Where a refused delivery sat in the stream. */
export interface RefusedDelivery {
  readonly subject: string;
  readonly streamSeq: number;
  readonly data: Uint8Array;
  /** The frame's index when the event was one frame of an AuditEventBatch; absent otherwise. */
  readonly frame?: number;
}

/** Where a refused event sat: `<subject>#<stream seq>`, plus `/<frame index>` for a batch frame. */
export function deliveryPlace(delivery: RefusedDelivery): string {
  const place = `${delivery.subject}#${delivery.streamSeq}`;
  return delivery.frame === undefined ? place : `${place}/${delivery.frame}`;
}

/** What the check of a refused delivery is called in its entry. */
export const INGEST_CHECK = 'audit_ingest';

/**
 * The chain entry of an event audit-log cannot store as an entry of its own (undecodable, invalid,
 * or the same id with different facts). Nothing is dropped: the event's bytes are kept in
 * `resource_raw` as `base64:<payload>`, its place in the stream in `resource_canonical` as
 * `<subject>#<stream seq>` (with `/<frame>` for a frame of a batch), the problem in `rule`; it
 * carries the event's decision id, principal and trace id when they decoded, so a query by the id
 * the caller was given finds it.
 */
export function ingestRefusalEntry(
  problem: string,
  delivery: RefusedDelivery,
  known: Partial<AuditEntry>,
  at: number,
): AuditEntry {
  return ownRefusal(
    {
      reason: 'INPUT_INVALID',
      check: INGEST_CHECK,
      explanation: problem,
      decidedAt: at,
      ...(known.decisionId !== undefined ? { id: known.decisionId } : {}),
    },
    {
      endpointFamily: 'protocol',
      ...(known.principalId !== undefined
        ? { principal: { id: known.principalId, kind: 'agent' } }
        : {}),
      ...(known.traceId !== undefined ? { traceId: known.traceId } : {}),
      resource: {
        status: 'invalid',
        kind: 'id',
        raw: `base64:${Buffer.from(delivery.data).toString('base64')}`,
        canonical: deliveryPlace(delivery),
        rule: problem,
        detail: problem,
      },
    },
  ).entry;
}
