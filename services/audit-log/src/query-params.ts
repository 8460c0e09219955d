import { isReasonCode, type EndpointFamily, type Outcome } from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import type { AuditFilter } from './audit-entry.repository';
import { INGEST_LIMITS } from './audit-event.validation';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './audit-query.service';

/** Query parameters of GET /v1/audit/entries; anything else is a 400 (a typo must not widen a query). */
export const ENTRIES_QUERY_PARAMS = [
  'principal',
  'outcome',
  'reason',
  'capability',
  'endpoint_family',
  'from',
  'to',
  'trace_id',
  'decision_id',
  'limit',
  'cursor',
] as const;

/** Query parameters of GET /v1/audit/verify. */
export const VERIFY_QUERY_PARAMS = ['from_seq', 'to_seq'] as const;

/** Endpoint families as the REST API spells them (the domain names). */
export const ENDPOINT_FAMILIES: readonly EndpointFamily[] = [
  'tools/call',
  'tools/list',
  'handle/peek',
  'handle/pipe',
  'protocol',
  'grant',
  'approval',
];

/**
 * Longest entry id or decision id accepted: ingest bounds both at this (INGEST_LIMITS), so a longer
 * one cannot match anything stored. Principal, capability and trace id are stored at any length,
 * so their filters are bounded only by the request line (Node refuses one over 16 KiB with 431).
 */
const MAX_VALUE_LENGTH = INGEST_LIMITS.idLength;

/** RFC 3339 date-time: full date, `T`, time with optional fraction, `Z` or a numeric offset. */
const RFC3339 =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

type RawQuery = Readonly<Record<string, unknown>>;

function only(q: RawQuery, allowed: readonly string[]): void {
  for (const key of Object.keys(q))
    if (!allowed.includes(key))
      throw invalidArgument(key, `unknown query parameter (allowed: ${allowed.join(', ')})`);
}

/** The single string value of a parameter, or undefined when absent. */
function single(q: RawQuery, name: string): string | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidArgument(name, 'must be given at most once');
  if (v === '') throw invalidArgument(name, 'must not be empty');
  return v;
}

function idLike(q: RawQuery, name: string, max = Infinity): string | undefined {
  const v = single(q, name);
  if (v !== undefined && v.length > max)
    throw invalidArgument(name, `longer than ${max} characters`);
  return v;
}

function time(q: RawQuery, name: string): number | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  const ms = RFC3339.test(v) ? Date.parse(v.toUpperCase()) : NaN;
  if (Number.isNaN(ms))
    throw invalidArgument(name, 'must be an RFC 3339 date-time, e.g. 2026-11-28T12:00:00Z');
  return ms;
}

function integer(q: RawQuery, name: string, min: number, max: number): number | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw invalidArgument(name, `must be an integer from ${min} to ${max}`);
  return n;
}

/** A parsed GET /v1/audit/entries request. */
export interface EntriesQuery {
  readonly filter: AuditFilter;
  readonly limit: number;
  readonly cursor?: string;
}

/** Validates the entries query; throws INPUT_INVALID naming the first bad parameter. */
export function parseEntriesQuery(q: RawQuery): EntriesQuery {
  only(q, ENTRIES_QUERY_PARAMS);
  const outcomeText = single(q, 'outcome');
  let outcome: Outcome | undefined;
  if (outcomeText === 'allow' || outcomeText === 'deny') outcome = outcomeText;
  else if (outcomeText !== undefined) throw invalidArgument('outcome', 'must be allow or deny');
  const reason = single(q, 'reason');
  if (reason !== undefined && (!isReasonCode(reason) || reason !== reason.toUpperCase()))
    throw invalidArgument('reason', 'must be a reason code name, e.g. NO_MATCHING_GRANT');
  const family = single(q, 'endpoint_family');
  if (family !== undefined && !ENDPOINT_FAMILIES.includes(family as EndpointFamily))
    throw invalidArgument('endpoint_family', `must be one of ${ENDPOINT_FAMILIES.join(', ')}`);
  const from = time(q, 'from');
  const to = time(q, 'to');
  if (from !== undefined && to !== undefined && to <= from)
    throw invalidArgument('to', 'must be later than from');
  const filter: AuditFilter = {
    ...defined('principalId', idLike(q, 'principal')),
    ...defined('outcome', outcome),
    ...defined('reason', reason),
    ...defined('capabilityId', idLike(q, 'capability')),
    ...defined('endpointFamily', family as EndpointFamily | undefined),
    ...defined('from', from),
    ...defined('to', to),
    ...defined('traceId', idLike(q, 'trace_id')),
    ...defined('decisionId', idLike(q, 'decision_id', MAX_VALUE_LENGTH)),
  };
  const limit = integer(q, 'limit', 1, MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE;
  const cursor = single(q, 'cursor');
  return { filter, limit, ...(cursor !== undefined ? { cursor } : {}) };
}

/** Validates the verify query (optional seq range). */
export function parseVerifyQuery(q: RawQuery): { fromSeq?: number; toSeq?: number } {
  only(q, VERIFY_QUERY_PARAMS);
  const fromSeq = integer(q, 'from_seq', 1, Number.MAX_SAFE_INTEGER);
  const toSeq = integer(q, 'to_seq', 1, Number.MAX_SAFE_INTEGER);
  if (fromSeq !== undefined && toSeq !== undefined && toSeq < fromSeq)
    throw invalidArgument('to_seq', 'must not be below from_seq');
  return { ...defined('fromSeq', fromSeq), ...defined('toSeq', toSeq) };
}

/** Validates an entry id path parameter. */
export function parseEntryId(id: string): string {
  if (id === '' || id.length > MAX_VALUE_LENGTH)
    throw invalidArgument('id', `must be 1 to ${MAX_VALUE_LENGTH} characters`);
  return id;
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
