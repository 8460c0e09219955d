import {
  argumentsDigest,
  canonicalJson,
  sha256Hex,
  type ArgumentResource,
  type CallRequestFacts,
  type DecideRequestFacts,
  type HandleRecord,
  type Principal,
  type PipeRequestFacts,
  type ResourceFacts,
  type SessionFacts,
} from '@hcp/core';
import * as core from '../generated/hcp/core/v1/core';
import type * as policy from '../generated/hcp/policy/v1/policy_decision';
import { invalidInput, portFromWire, schemeFromWire } from './check';
import { argumentResourceToProto, handleToProto, principalToProto, sessionToProto } from './domain';
import { enums, fromTimestamp } from './enums';

/**
 * hcp.policy.v1 requests in both directions. The edge builds `DecideRequestFacts` (the engine's
 * request less the PDP's clock and the fetched approval) and sends it; the PDP gets the same
 * type back from the ts-proto message, every field checked and bounded: a bad one is
 * INPUT_INVALID naming the field.
 */

/**
 * Bounds on request fields; generous for real use, tight enough to refuse abuse. The arguments
 * bounds are the edge's (256 KiB, 32 levels), re-checked here: the PDP trusts no caller's bound.
 */
export const DECIDE_LIMITS = {
  id: 256,
  text: 8192,
  addresses: 64,
  /** Resources of one call (every declared argument, every element of an array argument). */
  resources: 64,
  labels: 64,
  version: 32,
  argumentsBytes: 256 * 1024,
  argumentsDepth: 32,
} as const;

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const EMPTY_ARGUMENTS_DIGEST = argumentsDigest({});

function bounded(value: string, field: string, max: number = DECIDE_LIMITS.id): string {
  if (value.length > max) throw invalidInput(field, `longer than ${max} characters`);
  return value;
}

function principalFromProto(p: core.Principal | undefined): Principal | undefined {
  if (p === undefined) return undefined;
  const id = bounded(p.id, 'principal.id');
  if (id === '') return undefined; // an unauthenticated request: the engine says PRINCIPAL_UNAUTHENTICATED
  const kind = enums.principalKind.fromWire(p.kind);
  if (kind === undefined) throw invalidInput('principal.kind', 'unspecified or unknown');
  const displayName = bounded(p.displayName, 'principal.display_name');
  return { id, kind, ...(displayName !== '' ? { displayName } : {}) };
}

function sessionFromProto(s: core.SessionFacts | undefined, field: string): SessionFacts {
  if (s === undefined) throw invalidInput(field, 'required');
  const state = enums.sessionState.fromWire(s.state);
  if (state === undefined) throw invalidInput(`${field}.state`, 'unspecified or unknown');
  const id = bounded(s.id, `${field}.id`);
  const owner = bounded(s.ownerPrincipalId, `${field}.owner_principal_id`);
  const negotiated = bounded(
    s.negotiatedVersion,
    `${field}.negotiated_version`,
    DECIDE_LIMITS.version,
  );
  const requested = bounded(s.requestVersion, `${field}.request_version`, DECIDE_LIMITS.version);
  return {
    state,
    initialized: s.initialized,
    ...(id !== '' ? { id } : {}),
    ...(owner !== '' ? { ownerPrincipalId: owner } : {}),
    ...(negotiated !== '' ? { negotiatedVersion: negotiated } : {}),
    ...(requested !== '' ? { requestVersion: requested } : {}),
  };
}

function resourceFromProto(r: core.ResourceFacts | undefined, field: string): ResourceFacts {
  if (r === undefined) throw invalidInput(field, 'required');
  const facts = r.facts;
  switch (facts?.$case) {
    case 'resolved': {
      const res = facts.value;
      const f = `${field}.resolved`;
      const kind = enums.resourceKind.fromWire(res.kind);
      if (kind === undefined) throw invalidInput(`${f}.kind`, 'unspecified or unknown');
      const canonical = bounded(res.canonical, `${f}.canonical`, DECIDE_LIMITS.text);
      if (canonical === '') throw invalidInput(`${f}.canonical`, 'required');
      const list = res.addresses;
      if (list.length > DECIDE_LIMITS.addresses)
        throw invalidInput(`${f}.addresses`, `more than ${DECIDE_LIMITS.addresses}`);
      if (list.some((a) => a.length > 64))
        throw invalidInput(`${f}.addresses`, 'must be address strings');
      const host = bounded(res.host, `${f}.host`);
      const scheme = res.scheme !== '' ? schemeFromWire(res.scheme, `${f}.scheme`) : undefined;
      const port = res.port !== 0 ? portFromWire(res.port, `${f}.port`) : undefined;
      return {
        status: 'resolved',
        resource: {
          kind,
          raw: bounded(res.raw, `${f}.raw`, DECIDE_LIMITS.text),
          canonical,
          ...(host !== '' ? { host } : {}),
          ...(list.length > 0 ? { addresses: [...list] } : {}),
          ...(scheme !== undefined ? { scheme } : {}),
          ...(port !== undefined ? { port } : {}),
        },
      };
    }
    case 'rejected': {
      const rej = facts.value;
      const f = `${field}.rejected`;
      const status = enums.rejectionStatus.fromWire(rej.status);
      if (status === undefined) throw invalidInput(`${f}.status`, 'unspecified or unknown');
      const kind = enums.resourceKind.fromWire(rej.kind);
      if (kind === undefined) throw invalidInput(`${f}.kind`, 'unspecified or unknown');
      const canonical = bounded(rej.canonical, `${f}.canonical`, DECIDE_LIMITS.text);
      return {
        status,
        kind,
        raw: bounded(rej.raw, `${f}.raw`, DECIDE_LIMITS.text),
        rule: bounded(rej.rule, `${f}.rule`),
        detail: bounded(rej.detail, `${f}.detail`, DECIDE_LIMITS.text),
        ...(canonical !== '' ? { canonical } : {}),
      };
    }
    case undefined:
      throw invalidInput(field, 'must be resolved or rejected');
  }
}

/**
 * The call's resources: at most DECIDE_LIMITS.resources, each naming its argument, an element
 * index below that bound, and a verdict. Whether they match the capability's declared arguments
 * is the engine's check (I3), which refuses any resource it did not ask about.
 */
function resourcesFromProto(
  list: readonly core.ArgumentResource[],
  field: string,
): ArgumentResource[] {
  const max = DECIDE_LIMITS.resources;
  if (list.length > max) throw invalidInput(field, `more than ${max}`);
  return list.map((r, i) => {
    const f = `${field}[${i}]`;
    const argument = bounded(r.argument, `${f}.argument`);
    if (argument === '') throw invalidInput(`${f}.argument`, 'required');
    if (!Number.isInteger(r.index) || r.index < 0 || r.index >= max)
      throw invalidInput(`${f}.index`, `must be 0..${max - 1}`);
    return { argument, index: r.index, facts: resourceFromProto(r.facts, `${f}.facts`) };
  });
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
export function argumentsFromJson(
  text: string,
  digest: string,
  field: string,
): { arguments: Record<string, unknown>; argumentsDigest: string } | undefined {
  if (text === '') return undefined;
  const max = DECIDE_LIMITS.argumentsBytes;
  if (text.length > max || Buffer.byteLength(text, 'utf8') > max)
    throw invalidInput(field, `larger than ${max} bytes`);
  if (jsonDepth(text) > DECIDE_LIMITS.argumentsDepth)
    throw invalidInput(field, `nested deeper than ${DECIDE_LIMITS.argumentsDepth} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidInput(field, 'is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalidInput(field, 'must be a JSON object');
  const args = parsed as Record<string, unknown>;
  if (digest === '') return { arguments: args, argumentsDigest: argumentsDigest(args) };
  if (`sha256:${sha256Hex(text)}` !== digest)
    throw invalidInput(field, 'is not the canonical JSON that arguments_digest covers');
  return { arguments: args, argumentsDigest: digest };
}

function callFromProto(c: policy.CallFacts | undefined, field: string): CallRequestFacts {
  if (c === undefined) throw invalidInput(field, 'required');
  const given = bounded(c.argumentsDigest, `${field}.arguments_digest`, 80);
  if (given !== '' && !DIGEST.test(given))
    throw invalidInput(`${field}.arguments_digest`, 'must be sha256:<64 hex>');
  const args = argumentsFromJson(c.argumentsJson, given, `${field}.arguments_json`);
  const observed = bounded(c.observedDefinitionDigest, `${field}.observed_definition_digest`, 80);
  const resources = resourcesFromProto(c.resources, `${field}.resources`);
  const approvalId = bounded(c.approvalId, `${field}.approval_id`);
  return {
    capabilityId: bounded(c.capabilityId, `${field}.capability_id`),
    // Neither digest nor arguments: the call has no arguments, and an approval binds to `{}`.
    argumentsDigest: args?.argumentsDigest ?? (given !== '' ? given : EMPTY_ARGUMENTS_DIGEST),
    ...(args !== undefined ? { arguments: args.arguments } : {}),
    ...(observed !== '' ? { observedDefinitionDigest: observed } : {}),
    ...(resources.length > 0 ? { resources } : {}),
    ...(approvalId !== '' ? { approvalId } : {}),
  };
}

/** A hcp.policy.v1.DecideRequest, validated, as the engine's request less clock and approval. */
export function decideRequestFromProto(
  r: policy.DecideRequest | undefined,
  field = 'request',
): DecideRequestFacts {
  if (r === undefined) throw invalidInput(field, 'required');
  const principal = principalFromProto(r.principal);
  const endpointFamily =
    r.endpointFamily === core.EndpointFamily.ENDPOINT_FAMILY_UNSPECIFIED
      ? 'tools/call'
      : enums.endpointFamily.fromWire(r.endpointFamily);
  if (endpointFamily === undefined) throw invalidInput(`${field}.endpoint_family`, 'unknown');
  const traceId = bounded(r.traceId, `${field}.trace_id`, 128);
  return {
    ...(principal !== undefined ? { principal } : {}),
    session: sessionFromProto(r.session, `${field}.session`),
    call: callFromProto(r.call, `${field}.call`),
    endpointFamily,
    ...(traceId !== '' ? { traceId } : {}),
    auditAvailable: !r.auditUnavailable,
  };
}

function pipeSourceFromProto(h: core.Handle, handleId: string): HandleRecord {
  const entries = Object.entries(h.labels);
  if (entries.length > DECIDE_LIMITS.labels)
    throw invalidInput('source.handle.labels', `more than ${DECIDE_LIMITS.labels}`);
  for (const [k, v] of entries) {
    if (k.length > 64 || v.length > 256) throw invalidInput('source.handle.labels', 'bad label');
  }
  const id = bounded(h.id, 'source.handle.id');
  if (id !== handleId) throw invalidInput('source.handle.id', 'does not match source.handle_id');
  return {
    id,
    ownerPrincipalId: bounded(h.ownerPrincipalId, 'source.handle.owner_principal_id'),
    producingCapability: bounded(h.producingCapability, 'source.handle.producing_capability'),
    labels: Object.fromEntries(entries),
    createdAt: fromTimestamp(h.createdAt) ?? 0,
    expiresAt: fromTimestamp(h.expiresAt) ?? 0,
    sizeBytes: h.sizeBytes,
  };
}

/** A hcp.policy.v1.DecidePipeRequest, validated. */
export function pipeRequestFromProto(r: policy.DecidePipeRequest): PipeRequestFacts {
  if (r.source === undefined) throw invalidInput('source', 'required');
  const handleId = bounded(r.source.handleId, 'source.handle_id');
  if (handleId === '') throw invalidInput('source.handle_id', 'required');
  const source = r.source.handle && pipeSourceFromProto(r.source.handle, handleId);
  return {
    sourceHandleId: handleId,
    ...(source !== undefined ? { source } : {}),
    target: decideRequestFromProto(r.target, 'target'),
  };
}

/** A Decide request as the PDP's gRPC API takes it. */
export function decideRequestToProto(r: DecideRequestFacts): policy.DecideRequest {
  const c = r.call;
  return {
    principal: r.principal ? principalToProto(r.principal) : undefined,
    session: sessionToProto(r.session),
    call: {
      capabilityId: c.capabilityId,
      observedDefinitionDigest: c.observedDefinitionDigest ?? '',
      resources: (c.resources ?? []).map(argumentResourceToProto),
      argumentsDigest: c.argumentsDigest,
      approvalId: c.approvalId ?? '',
      argumentsJson: c.arguments !== undefined ? canonicalJson(c.arguments) : '',
    },
    endpointFamily: enums.endpointFamily.toWire(r.endpointFamily ?? 'tools/call'),
    traceId: r.traceId ?? '',
    auditUnavailable: r.auditAvailable === false,
  };
}

/** A DecidePipe request as the PDP's gRPC API takes it. */
export function pipeRequestToProto(r: PipeRequestFacts): policy.DecidePipeRequest {
  return {
    source: {
      handleId: r.sourceHandleId,
      handle: r.source ? handleToProto(r.source) : undefined,
    },
    target: decideRequestToProto(r.target),
  };
}
