import {
  denial,
  HcpError,
  type AuditEntry,
  type Decision,
  type DenialSpec,
  type Principal,
  type SessionFacts,
} from '@hcp/core';
import { auditEntryFor, type AuditSubject } from './audit';

/** Where refusal entries go: the service's audit publisher (`record` throws when it cannot accept). */
export interface AuditSink {
  record(entry: AuditEntry): void;
}

/** Who was refused, and on what: everything the entry records beside the decision. */
export interface RefusalSubject extends AuditSubject {
  /** Absent when the caller did not authenticate. */
  readonly principal?: Principal;
  /** The caller's session facts; a request outside any session when absent. */
  readonly session?: SessionFacts;
  readonly traceId?: string;
}

/** A denial as the refusal path made it: the decision the caller is told, and whether it is on record. */
export interface Refusal {
  readonly decision: Decision;
  /** False when the sink refused the entry; `auditError` says why. The refusal stands either way. */
  readonly audited: boolean;
  readonly auditError?: HcpError | Error;
}

const NO_SESSION: SessionFacts = { state: 'none', initialized: false };

/**
 * Records an already-made decision (an engine decision, allow or deny) with the same entry builder
 * the refusal path uses; throws whatever the sink throws, so the caller can fail closed on an allow.
 */
export function recordDecision(sink: AuditSink, decision: Decision, subject: RefusalSubject): void {
  sink.record(
    auditEntryFor(
      {
        ...(subject.principal === undefined ? {} : { principal: subject.principal }),
        session: subject.session ?? NO_SESSION,
        now: decision.decidedAt,
        ...(subject.traceId === undefined ? {} : { traceId: subject.traceId }),
      },
      decision,
      subject,
    ),
  );
}

/**
 * The one refusal path: makes the denial (`denial` in libs/core: reason, check, invariant from the
 * one table, decision id) and records its audit entry (I7). Every place that refuses anything goes
 * through here, so a refusal an agent or operator receives always has an entry with the same id.
 * When the sink refuses the entry the refusal still stands (nothing runs); `audited` is false and
 * the caller logs it, since there is nowhere else to put it.
 */
export function refuse(sink: AuditSink, spec: DenialSpec, subject: RefusalSubject): Refusal {
  const decision = denial(spec);
  try {
    recordDecision(sink, decision, subject);
    return { decision, audited: true };
  } catch (err: unknown) {
    const auditError =
      err instanceof HcpError || err instanceof Error ? err : new Error(String(err));
    return { decision, audited: false, auditError };
  }
}
