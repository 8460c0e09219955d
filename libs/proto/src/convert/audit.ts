import { HcpError, type AuditEntry } from '@hcp/core';
import type * as core from '../generated/hcp/core/v1/core';
import { enums, fromTimestamp, toTimestamp } from './enums';

/** A domain audit entry as a ts-proto message; absent optional fields become proto defaults. */
export function auditEntryToProto(e: AuditEntry): core.AuditEntry {
  return {
    id: e.id,
    time: toTimestamp(e.time),
    decisionId: e.decisionId,
    principalId: e.principalId ?? '',
    endpointFamily: enums.endpointFamily.toWire(e.endpointFamily),
    capabilityId: e.capabilityId ?? '',
    resourceRaw: e.resourceRaw ?? '',
    resourceCanonical: e.resourceCanonical ?? '',
    outcome: enums.outcome.toWire(e.outcome),
    reason: enums.reason.toWire(e.reason),
    invariant: e.invariant !== undefined ? enums.invariant.toWire(e.invariant) : 0,
    check: e.check ?? '',
    matchedGrantId: e.matchedGrantId ?? '',
    missingGrant: e.missingGrant ?? '',
    rule: e.rule ?? '',
    approvalId: e.approvalId ?? '',
    handleIds: [...e.handleIds],
    traceId: e.traceId ?? '',
    seq: e.seq ?? 0,
    prevHash: e.prevHash ?? '',
    hash: e.hash ?? '',
  };
}

function invalid(field: string, message: string): HcpError {
  return new HcpError('INPUT_INVALID', `${field}: ${message}`, { field });
}

/**
 * An audit entry from the wire in domain form. Unlike the other converters it must refuse:
 * an entry has no safe default for its family, outcome or reason, and the audit must not
 * invent evidence. Throws HcpError('INPUT_INVALID') naming the field (`entry.<field>`).
 * Proto defaults (empty strings, 0) become absent optional fields.
 */
export function auditEntryFromProto(e: core.AuditEntry): AuditEntry {
  if (e.id === '') throw invalid('entry.id', 'is required');
  const time = fromTimestamp(e.time);
  if (time === undefined) throw invalid('entry.time', 'is required');
  const endpointFamily = enums.endpointFamily.fromWire(e.endpointFamily);
  if (endpointFamily === undefined)
    throw invalid('entry.endpoint_family', `unknown value ${e.endpointFamily}`);
  const outcome = enums.outcome.fromWire(e.outcome);
  if (outcome === undefined) throw invalid('entry.outcome', `unknown value ${e.outcome}`);
  const reason = enums.reason.fromWire(e.reason);
  if (reason === undefined) throw invalid('entry.reason', `unknown value ${e.reason}`);
  let invariant: AuditEntry['invariant'];
  if ((e.invariant as number) !== 0) {
    invariant = enums.invariant.fromWire(e.invariant);
    if (invariant === undefined) throw invalid('entry.invariant', `unknown value ${e.invariant}`);
  }
  const opt = <K extends string>(key: K, value: string): { [P in K]?: string } =>
    (value !== '' ? { [key]: value } : {}) as { [P in K]?: string };
  return {
    id: e.id,
    time,
    decisionId: e.decisionId,
    ...opt('principalId', e.principalId),
    endpointFamily,
    ...opt('capabilityId', e.capabilityId),
    ...opt('resourceRaw', e.resourceRaw),
    ...opt('resourceCanonical', e.resourceCanonical),
    outcome,
    reason,
    ...(invariant !== undefined ? { invariant } : {}),
    ...opt('check', e.check),
    ...opt('matchedGrantId', e.matchedGrantId),
    ...opt('missingGrant', e.missingGrant),
    ...opt('rule', e.rule),
    ...opt('approvalId', e.approvalId),
    handleIds: [...e.handleIds],
    ...opt('traceId', e.traceId),
    ...(e.seq !== 0 ? { seq: e.seq } : {}),
    ...opt('prevHash', e.prevHash),
    ...opt('hash', e.hash),
  };
}
