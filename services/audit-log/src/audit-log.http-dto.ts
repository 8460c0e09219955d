import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { REASON_CODES } from '@hcp/core';
import type { StoredAuditEntry } from './audit-entry.repository';
import type { VerifyResult } from './audit-query.service';
import { ENDPOINT_FAMILIES } from './query-params';

// Response shapes of the REST API. Classes (not interfaces) because @nestjs/swagger reads their
// decorators to write the OpenAPI document; the handlers return plain objects of these shapes.

/** One audit entry as the REST API returns it (snake_case, like the query parameters). */
export class AuditEntryDto {
  @ApiProperty({ description: 'Position in the chain, from 1.', example: 42 })
  seq!: number;
  @ApiProperty({ description: 'Entry id, minted by the producer.', example: 'aud_0194c4a2-…' })
  id!: string;
  @ApiProperty({
    description: 'When the audited event happened (RFC 3339, UTC, milliseconds).',
    format: 'date-time',
  })
  time!: string;
  @ApiProperty({
    description: 'Id of the decision audited; empty for events that were not decisions.',
  })
  decision_id!: string;
  @ApiProperty({
    description: 'The principal that acted; null when unauthenticated.',
    type: String,
    nullable: true,
  })
  principal_id!: string | null;
  @ApiProperty({ enum: ENDPOINT_FAMILIES })
  endpoint_family!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Capability invoked or targeted.' })
  capability_id!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The resource as the caller sent it.' })
  resource_raw!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The canonical resource policy decided on.',
  })
  resource_canonical!: string | null;
  @ApiProperty({ enum: ['allow', 'deny'] })
  outcome!: string;
  @ApiProperty({ enum: REASON_CODES, description: 'The decision reason code.' })
  reason!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Invariant behind a denial, e.g. I5.' })
  invariant!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The check that decided.' })
  check!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The grant that matched.' })
  matched_grant_id!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'What grant would have been needed.' })
  missing_grant!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The canonicaliser or policy rule that fired.',
  })
  rule!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Approval presented or consumed.' })
  approval_id!: string | null;
  @ApiProperty({ type: [String], description: 'Handles read, written or piped.' })
  handle_ids!: string[];
  @ApiProperty({ type: String, nullable: true, description: 'Trace id of the request.' })
  trace_id!: string | null;
  @ApiProperty({
    description: 'Hash of the previous entry (64 zeros for the first), lower-case hex.',
  })
  prev_hash!: string;
  @ApiProperty({
    description: 'sha256(prev_hash || canonical JSON of the entry), lower-case hex; see README.',
  })
  hash!: string;
  @ApiProperty({ description: 'Publishing service (ingest metadata, not hashed).' })
  source!: string;
  @ApiProperty({ format: 'date-time', description: 'When audit-log stored it (not hashed).' })
  ingested_at!: string;
}

/** A page of entries. */
export class EntriesPageDto {
  @ApiProperty({
    type: [AuditEntryDto],
    description: 'Matching entries, oldest first (ascending seq).',
  })
  entries!: AuditEntryDto[];
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Pass as `cursor` (with the same filters) for the next page; null on the last page.',
  })
  next_cursor!: string | null;
}

/** Where the chain first breaks. */
export class BrokenLinkDto {
  @ApiProperty({ description: 'seq of the broken (or missing) entry.' })
  seq!: number;
  @ApiProperty({ description: 'id of the entry; empty when the entry at this seq is missing.' })
  id!: string;
  @ApiProperty({ enum: ['hash_mismatch', 'prev_hash_mismatch', 'seq_gap'] })
  reason!: string;
  @ApiProperty({
    description:
      'What the chain requires here: the recomputed hash (hash_mismatch), the previous hash (prev_hash_mismatch), or the last intact hash (seq_gap).',
  })
  expected!: string;
  @ApiProperty({ description: 'What is stored; empty when the entry is missing.' })
  stored!: string;
}

/** The result of recomputing the chain. */
export class VerifyResultDto {
  @ApiProperty({ description: 'True when every checked link recomputes.' })
  ok!: boolean;
  @ApiProperty({ description: 'Entries recomputed, including the broken one.' })
  checked!: number;
  @ApiProperty({ description: 'seq of the last entry checked; 0 when none.' })
  last_seq!: number;
  @ApiProperty({
    description: 'hash of the last entry checked; record it to detect later truncation.',
  })
  last_hash!: string;
  @ApiPropertyOptional({ type: BrokenLinkDto, description: 'Present only when ok is false.' })
  first_broken?: BrokenLinkDto;
}

/** The HTTP-level part of an error body. */
export class ErrorDetailDto {
  @ApiProperty({
    description:
      'INPUT_INVALID (400), PRINCIPAL_UNAUTHENTICATED (401), FORBIDDEN (403), NOT_FOUND (404), ' +
      'METHOD_NOT_ALLOWED (405), NOT_ACCEPTABLE (406), UNAVAILABLE (503), INTERNAL (500).',
    example: 'INPUT_INVALID',
  })
  code!: string;
  @ApiProperty({
    description: 'What went wrong; for 400 it starts with the parameter name.',
    example: 'limit: must be an integer from 1 to 1000',
  })
  message!: string;
}

/**
 * `{ reason, decisionId, error: { code, message } }`. A refusal of the caller (every 4xx) carries
 * the reason code and the id of its decision, recorded in the audit like any other refusal.
 */
export class ErrorDto {
  @ApiPropertyOptional({
    enum: REASON_CODES,
    description:
      'Reason code of the refusal: PRINCIPAL_UNAUTHENTICATED (401), SCOPE_MISSING (403, not an ' +
      'operator), PAYLOAD_TOO_LARGE (413), INPUT_INVALID (400, 404, 405, 406, 415). Absent on 5xx.',
  })
  reason?: string;
  @ApiPropertyOptional({
    description:
      'Id of the refusal decision; GET /v1/audit/entries?decision_id=<it> finds its entry. ' +
      'Absent on 5xx.',
    example: 'dec_0194c4a2-…',
  })
  decisionId?: string;
  @ApiProperty({ type: ErrorDetailDto })
  error!: ErrorDetailDto;
}

/** Health and readiness. */
export class StatusDto {
  @ApiProperty({ example: 'ok' })
  status!: string;
}

/** An entry in its REST form. */
export function entryToJson(e: StoredAuditEntry): AuditEntryDto {
  return {
    seq: e.seq,
    id: e.id,
    time: new Date(e.time).toISOString(),
    decision_id: e.decisionId,
    principal_id: e.principalId ?? null,
    endpoint_family: e.endpointFamily,
    capability_id: e.capabilityId ?? null,
    resource_raw: e.resourceRaw ?? null,
    resource_canonical: e.resourceCanonical ?? null,
    outcome: e.outcome,
    reason: e.reason,
    invariant: e.invariant ?? null,
    check: e.check ?? null,
    matched_grant_id: e.matchedGrantId ?? null,
    missing_grant: e.missingGrant ?? null,
    rule: e.rule ?? null,
    approval_id: e.approvalId ?? null,
    handle_ids: [...e.handleIds],
    trace_id: e.traceId ?? null,
    prev_hash: e.prevHash,
    hash: e.hash,
    source: e.source,
    ingested_at: new Date(e.ingestedAt).toISOString(),
  };
}

/** A verify result in its REST form. */
export function verifyToJson(r: VerifyResult): VerifyResultDto {
  return {
    ok: r.ok,
    checked: r.checked,
    last_seq: r.lastSeq,
    last_hash: r.lastHash,
    ...(r.firstBroken !== undefined ? { first_broken: { ...r.firstBroken } } : {}),
  };
}
