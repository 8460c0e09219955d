import type { EndpointFamily, Outcome, ReasonCode } from '@hcp/core';
import type * as audit from '../generated/hcp/audit/v1/audit_log';
import { invalidInput, timestampFromProto } from './check';
import { enums, type EnumCodec } from './enums';

/** Bound on each free-text filter; longer ones name nothing the log holds. */
export const AUDIT_QUERY_TEXT_LIMIT = 256;

/** The filters of an audit query in domain terms; an absent one matches everything. */
export interface AuditQueryFilter {
  readonly principalId?: string;
  readonly outcome?: Outcome;
  readonly reason?: ReasonCode;
  readonly capabilityId?: string;
  readonly endpointFamily?: EndpointFamily;
  /** Inclusive lower bound on the entry's time, epoch millis. */
  readonly from?: number;
  /** Exclusive upper bound on the entry's time, epoch millis. */
  readonly to?: number;
  readonly traceId?: string;
}

/** A hcp.audit.v1.QueryEntriesRequest, checked: its filters, page size and page token. */
export interface AuditQueryFacts {
  readonly filter: AuditQueryFilter;
  /** 0: the service's default. */
  readonly pageSize: number;
  readonly pageToken?: string;
}

/** An optional text field: '' is unset; longer than the bound is INPUT_INVALID. */
function text(value: string, field: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > AUDIT_QUERY_TEXT_LIMIT)
    throw invalidInput(field, `longer than ${AUDIT_QUERY_TEXT_LIMIT} characters`);
  return value;
}

/** An enum filter: 0 (unspecified) means any; an unknown number is an input error. */
function enumFilter<D extends string>(value: number, field: string, codec: EnumCodec<D>) {
  if (value === 0) return undefined;
  const d = codec.fromWire(value);
  if (d === undefined) throw invalidInput(field, `unknown value ${value}`);
  return d;
}

function nonNegative(value: number, field: string): number {
  if (value < 0) throw invalidInput(field, 'must be a non-negative integer');
  return value;
}

/** A hcp.audit.v1.QueryEntriesRequest as filters and paging. */
export function auditQueryFromProto(r: audit.QueryEntriesRequest): AuditQueryFacts {
  const candidates: AuditQueryFilter = {
    principalId: text(r.principalId, 'principalId'),
    outcome: enumFilter(r.outcome, 'outcome', enums.outcome),
    reason: enumFilter(r.reason, 'reason', enums.reason),
    capabilityId: text(r.capabilityId, 'capabilityId'),
    endpointFamily: enumFilter(r.endpointFamily, 'endpointFamily', enums.endpointFamily),
    from: timestampFromProto(r.startTime, 'startTime'),
    to: timestampFromProto(r.endTime, 'endTime'),
    traceId: text(r.traceId, 'traceId'),
  };
  const filter = Object.fromEntries(
    Object.entries(candidates).filter(([, v]) => v !== undefined),
  ) as AuditQueryFilter;
  const pageToken = text(r.pageToken, 'pageToken');
  return {
    filter,
    pageSize: nonNegative(r.pageSize, 'pageSize'),
    ...(pageToken !== undefined && { pageToken }),
  };
}

/** A hcp.audit.v1.VerifyRequest: the sequence range, 0 meaning open at that end. */
export function verifyRangeFromProto(r: audit.VerifyRequest): { fromSeq?: number; toSeq?: number } {
  const fromSeq = nonNegative(r.fromSeq, 'fromSeq');
  const toSeq = nonNegative(r.toSeq, 'toSeq');
  if (toSeq !== 0 && toSeq < fromSeq) throw invalidInput('to_seq', 'must not be below from_seq');
  return { ...(fromSeq !== 0 && { fromSeq }), ...(toSeq !== 0 && { toSeq }) };
}
