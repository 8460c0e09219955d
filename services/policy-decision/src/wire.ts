import {
  argumentsDigest,
  sha256Hex,
  type HandleRecord,
  type Principal,
  type ResourceFacts,
  type SessionFacts,
} from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import { enums, fromTimestamp } from '@hcp/proto';
import type { CallInput, DecideInput, PipeInput } from './decision.service';

/**
 * Validation of requests as @grpc/proto-loader delivers them (camelCase, numeric
 * enums, unset messages null, oneof case named by a virtual field). Everything
 * arriving here is untrusted: each field is checked and bounded, and a bad one
 * is INPUT_INVALID naming the field.
 */

/**
 * Bounds on request fields; generous for real use, tight enough to refuse abuse. The arguments
 * bounds are the edge's (256 KiB, 32 levels), re-checked here: the PDP trusts no caller's bound.
 */
export const LIMITS = {
  id: 256,
  text: 8192,
  addresses: 64,
  labels: 64,
  version: 32,
  argumentsBytes: 256 * 1024,
  argumentsDepth: 32,
} as const;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

type Obj = Record<string, unknown>;

function obj(value: unknown, field: string, required: boolean): Obj | undefined {
  if (value === null || value === undefined) {
    if (required) throw invalidArgument(field, 'required');
    return undefined;
  }
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalidArgument(field, 'must be a message');
  return value as Obj;
}

function str(o: Obj, key: string, field: string, max: number = LIMITS.id): string {
  const v = o[key];
  if (v === null || v === undefined) return '';
  if (typeof v !== 'string') throw invalidArgument(field, 'must be a string');
  if (v.length > max) throw invalidArgument(field, `longer than ${max} characters`);
  return v;
}

function num(o: Obj, key: string): number {
  const v = o[key];
  return typeof v === 'number' ? v : 0;
}

function principalOf(value: unknown): Principal | undefined {
  const p = obj(value, 'principal', false);
  if (p === undefined) return undefined;
  const id = str(p, 'id', 'principal.id');
  if (id === '') return undefined; // an unauthenticated request: the engine says PRINCIPAL_UNAUTHENTICATED
  const kind = enums.principalKind.fromWire(num(p, 'kind'));
  if (kind === undefined) throw invalidArgument('principal.kind', 'unspecified or unknown');
  const displayName = str(p, 'displayName', 'principal.display_name');
  return { id, kind, ...(displayName !== '' ? { displayName } : {}) };
}

function sessionOf(value: unknown, field: string): SessionFacts {
  const s = obj(value, field, true)!;
  const state = enums.sessionState.fromWire(num(s, 'state'));
  if (state === undefined) throw invalidArgument(`${field}.state`, 'unspecified or unknown');
  const id = str(s, 'id', `${field}.id`);
  const owner = str(s, 'ownerPrincipalId', `${field}.owner_principal_id`);
  const negotiated = str(s, 'negotiatedVersion', `${field}.negotiated_version`, LIMITS.version);
  const requested = str(s, 'requestVersion', `${field}.request_version`, LIMITS.version);
  return {
    state,
    initialized: s['initialized'] === true,
    ...(id !== '' ? { id } : {}),
    ...(owner !== '' ? { ownerPrincipalId: owner } : {}),
    ...(negotiated !== '' ? { negotiatedVersion: negotiated } : {}),
    ...(requested !== '' ? { requestVersion: requested } : {}),
  };
}

function resourceOf(value: unknown, field: string): ResourceFacts | undefined {
  const r = obj(value, field, false);
  if (r === undefined) return undefined;
  const which = r['facts'];
  if (which === 'resolved') {
    const res = obj(r['resolved'], `${field}.resolved`, true)!;
    const kind = enums.resourceKind.fromWire(num(res, 'kind'));
    if (kind === undefined)
      throw invalidArgument(`${field}.resolved.kind`, 'unspecified or unknown');
    const canonical = str(res, 'canonical', `${field}.resolved.canonical`, LIMITS.text);
    if (canonical === '') throw invalidArgument(`${field}.resolved.canonical`, 'required');
    const addresses = res['addresses'];
    if (addresses !== undefined && addresses !== null && !Array.isArray(addresses)) {
      throw invalidArgument(`${field}.resolved.addresses`, 'must be a list');
    }
    const list = (addresses ?? []) as unknown[];
    if (list.length > LIMITS.addresses)
      throw invalidArgument(`${field}.resolved.addresses`, `more than ${LIMITS.addresses}`);
    if (list.some((a) => typeof a !== 'string' || a.length > 64)) {
      throw invalidArgument(`${field}.resolved.addresses`, 'must be address strings');
    }
    const host = str(res, 'host', `${field}.resolved.host`);
    return {
      status: 'resolved',
      resource: {
        kind,
        raw: str(res, 'raw', `${field}.resolved.raw`, LIMITS.text),
        canonical,
        ...(host !== '' ? { host } : {}),
        ...(list.length > 0 ? { addresses: list as string[] } : {}),
      },
    };
  }
  if (which === 'rejected') {
    const rej = obj(r['rejected'], `${field}.rejected`, true)!;
    const status = enums.rejectionStatus.fromWire(num(rej, 'status'));
    if (status === undefined)
      throw invalidArgument(`${field}.rejected.status`, 'unspecified or unknown');
    const kind = enums.resourceKind.fromWire(num(rej, 'kind'));
    if (kind === undefined)
      throw invalidArgument(`${field}.rejected.kind`, 'unspecified or unknown');
    const canonical = str(rej, 'canonical', `${field}.rejected.canonical`, LIMITS.text);
    return {
      status,
      kind,
      raw: str(rej, 'raw', `${field}.rejected.raw`, LIMITS.text),
      rule: str(rej, 'rule', `${field}.rejected.rule`),
      detail: str(rej, 'detail', `${field}.rejected.detail`, LIMITS.text),
      ...(canonical !== '' ? { canonical } : {}),
    };
  }
  throw invalidArgument(field, 'must be resolved or rejected');
}

/** Deepest nesting of objects and arrays in JSON text, scanned before parsing anything. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* backslash */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) {
      if (++depth > max) max = depth;
    } else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return max;
}

/**
 * The call's arguments from `arguments_json`, bounded before it is parsed, and bound to the
 * digest: when `arguments_digest` is set the text must be exactly what it covers (RFC 8785
 * canonical JSON), so the constraints a grant checks and the approval binding see the same
 * arguments. Without a digest, the digest is derived from the arguments.
 */
export function argumentsOf(
  c: Record<string, unknown>,
  digest: string,
  field: string,
): { arguments: Record<string, unknown>; argumentsDigest: string } | undefined {
  const text = c['argumentsJson'];
  if (text === null || text === undefined || text === '') return undefined;
  if (typeof text !== 'string') throw invalidArgument(field, 'must be a string');
  const max = LIMITS.argumentsBytes;
  if (text.length > max || Buffer.byteLength(text, 'utf8') > max)
    throw invalidArgument(field, `larger than ${max} bytes`);
  if (jsonDepth(text) > LIMITS.argumentsDepth)
    throw invalidArgument(field, `nested deeper than ${LIMITS.argumentsDepth} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidArgument(field, 'is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalidArgument(field, 'must be a JSON object');
  const args = parsed as Record<string, unknown>;
  if (digest === '') return { arguments: args, argumentsDigest: argumentsDigest(args) };
  if (`sha256:${sha256Hex(text)}` !== digest)
    throw invalidArgument(field, 'is not the canonical JSON that arguments_digest covers');
  return { arguments: args, argumentsDigest: digest };
}

function callOf(value: unknown, field: string): CallInput {
  const c = obj(value, field, true)!;
  const given = str(c, 'argumentsDigest', `${field}.arguments_digest`, 80);
  if (given !== '' && !DIGEST.test(given))
    throw invalidArgument(`${field}.arguments_digest`, 'must be sha256:<64 hex>');
  const args = argumentsOf(c, given, `${field}.arguments_json`);
  const digest = args?.argumentsDigest ?? given;
  const observed = str(c, 'observedDefinitionDigest', `${field}.observed_definition_digest`, 80);
  const resource = resourceOf(c['resource'], `${field}.resource`);
  const approvalId = str(c, 'approvalId', `${field}.approval_id`);
  return {
    capabilityId: str(c, 'capabilityId', `${field}.capability_id`),
    ...(digest !== '' ? { argumentsDigest: digest } : {}),
    ...(args !== undefined ? { arguments: args.arguments } : {}),
    ...(observed !== '' ? { observedDefinitionDigest: observed } : {}),
    ...(resource !== undefined ? { resource } : {}),
    ...(approvalId !== '' ? { approvalId } : {}),
  };
}

/** A hcp.policy.v1.DecideRequest, validated. */
export function decideInputFromWire(value: unknown, field = 'request'): DecideInput {
  const r = obj(value, field, true)!;
  const principal = principalOf(r['principal']);
  const family = num(r, 'endpointFamily');
  const endpointFamily = family === 0 ? 'tools/call' : enums.endpointFamily.fromWire(family);
  if (endpointFamily === undefined) throw invalidArgument(`${field}.endpoint_family`, 'unknown');
  const traceId = str(r, 'traceId', `${field}.trace_id`, 128);
  return {
    ...(principal !== undefined ? { principal } : {}),
    session: sessionOf(r['session'], `${field}.session`),
    call: callOf(r['call'], `${field}.call`),
    endpointFamily,
    ...(traceId !== '' ? { traceId } : {}),
    auditAvailable: r['auditUnavailable'] !== true,
  };
}

/** A hcp.policy.v1.DecidePipeRequest, validated. */
export function pipeInputFromWire(value: unknown): PipeInput {
  const r = obj(value, 'request', true)!;
  const src = obj(r['source'], 'source', true)!;
  const handleId = str(src, 'handleId', 'source.handle_id');
  if (handleId === '') throw invalidArgument('source.handle_id', 'required');
  const h = obj(src['handle'], 'source.handle', false);
  let source: HandleRecord | undefined;
  if (h !== undefined) {
    const labels = obj(h['labels'], 'source.handle.labels', false) ?? {};
    const entries = Object.entries(labels);
    if (entries.length > LIMITS.labels)
      throw invalidArgument('source.handle.labels', `more than ${LIMITS.labels}`);
    for (const [k, v] of entries) {
      if (typeof v !== 'string' || k.length > 64 || v.length > 256)
        throw invalidArgument('source.handle.labels', 'bad label');
    }
    const id = str(h, 'id', 'source.handle.id');
    if (id !== handleId)
      throw invalidArgument('source.handle.id', 'does not match source.handle_id');
    source = {
      id,
      ownerPrincipalId: str(h, 'ownerPrincipalId', 'source.handle.owner_principal_id'),
      producingCapability: str(h, 'producingCapability', 'source.handle.producing_capability'),
      labels: labels as Record<string, string>,
      createdAt: fromTimestamp(h['createdAt'] as never) ?? 0,
      expiresAt: fromTimestamp(h['expiresAt'] as never) ?? 0,
      sizeBytes: num(h, 'sizeBytes'),
    };
  }
  return {
    sourceHandleId: handleId,
    ...(source !== undefined ? { source } : {}),
    target: decideInputFromWire(r['target'], 'target'),
  };
}
