import type {
  Approval,
  ArgumentConstraint,
  Capability,
  JsonScalar,
  ResourceArgument,
  ResourcePattern,
} from '@hcp/core';
import type * as core from '../generated/hcp/core/v1/core';
import * as grants from '../generated/hcp/grants/v1/grant_store';
import {
  boundedList,
  durationFromProto,
  invalidInput,
  portFromWire,
  schemeFromWire,
  timestampFromProto,
} from './check';
import { enums, toTimestamp, type EnumCodec } from './enums';

/**
 * hcp.grants.v1 requests in domain terms: each oneof must name its case, each enum a known
 * value other than UNSPECIFIED, each Timestamp and Duration be in range, each list within its
 * bound; otherwise INPUT_INVALID naming the field. What a value may contain (paths, hosts,
 * scopes) is grant-store's rule, checked by its services.
 */

/** Bounds on the repeated fields of grant-store requests, checked before anything iterates them. */
export const GRANT_LIST_LIMITS = {
  capabilitiesPerGrant: 64,
  patternsPerGrant: 64,
  hostsPerSet: 64,
  cidrsPerSet: 64,
  schemesPerSet: 8,
  portsPerSet: 64,
  scopesPerGrant: 32,
  effectsPerCapability: 5,
  resourceArgumentsPerCapability: 16,
  scopesPerResourceArgument: 32,
} as const;

/** A grant as CreateGrant asks for it; id, times and revision are the store's. */
export interface CreateGrantFacts {
  readonly principalId: string;
  readonly capabilities: readonly string[];
  readonly resourcePatterns: readonly ResourcePattern[];
  readonly scopes: readonly string[];
  /** Undefined: never expires. */
  readonly expiresAt?: number;
  readonly argumentConstraints: readonly ArgumentConstraint[];
}

/** An approval request: the call it binds and how long it may wait. */
export interface RequestApprovalFacts {
  readonly principalId: string;
  readonly capabilityId: string;
  readonly bindingDigest: string;
  /** Undefined: the store's default. */
  readonly ttlMs?: number;
  readonly summary: string;
}

/** An operator's verdict on a pending approval. */
export type ApprovalVerdictFacts = 'approve' | 'deny';

/** A closed enum: 0 (UNSPECIFIED) and unknown numbers are refused by name. */
function known<D extends string>(
  value: number,
  field: string,
  codec: EnumCodec<D>,
  unspecifiedName: string,
): D {
  if (value === 0) throw invalidInput(field, `${unspecifiedName} is not allowed`);
  const d = codec.fromWire(value);
  if (d === undefined) throw invalidInput(field, `unknown value ${value}`);
  return d;
}

const verdicts: EnumCodec<ApprovalVerdictFacts> = {
  toWire: (v) =>
    v === 'approve'
      ? grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE
      : grants.ApprovalVerdict.APPROVAL_VERDICT_DENY,
  fromWire: (n) =>
    n === grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE
      ? 'approve'
      : n === grants.ApprovalVerdict.APPROVAL_VERDICT_DENY
        ? 'deny'
        : undefined,
};

/** One ResourcePattern of a request; the oneof must name its case. */
export function resourcePatternFromRequest(
  p: core.ResourcePattern,
  field: string,
): ResourcePattern {
  const pattern = p.pattern;
  switch (pattern?.$case) {
    case 'pathPrefix':
      return { kind: 'path_prefix', prefix: pattern.value };
    case 'exactId':
      return { kind: 'exact_id', id: pattern.value };
    case 'hostSet': {
      const f = `${field}.hostSet`;
      const L = GRANT_LIST_LIMITS;
      const schemes = boundedList(pattern.value.schemes, `${f}.schemes`, L.schemesPerSet).map(
        (v, i) => schemeFromWire(v, `${f}.schemes[${i}]`),
      );
      const ports = boundedList(pattern.value.ports, `${f}.ports`, L.portsPerSet).map((v, i) =>
        portFromWire(v, `${f}.ports[${i}]`),
      );
      return {
        kind: 'host_set',
        hosts: [...boundedList(pattern.value.hosts, `${f}.hosts`, L.hostsPerSet)],
        cidrs: [...boundedList(pattern.value.cidrs, `${f}.cidrs`, L.cidrsPerSet)],
        ...(schemes.length > 0 && { schemes }),
        ...(ports.length > 0 && { ports }),
      };
    }
    case undefined:
      throw invalidInput(field, 'must set exactly one of pathPrefix, hostSet, exactId');
  }
}

function scalarFromRequest(v: core.ScalarValue, field: string): JsonScalar {
  const value = v.value;
  switch (value?.$case) {
    case 'stringValue':
    case 'numberValue':
    case 'boolValue':
      return value.value;
    case 'nullValue':
      if (!value.value) throw invalidInput(`${field}.nullValue`, 'must be true when set');
      return null;
    case undefined:
      throw invalidInput(
        field,
        'must set exactly one of stringValue, numberValue, boolValue, nullValue',
      );
  }
}

/**
 * One ArgumentConstraint of a request; the oneof must name its rule. Unlike the lenient reader
 * of stored grants (argumentConstraintFromProto), a request's unreadable constraint is refused;
 * the rule itself is checked by the engine's own rules in grant-store.
 */
export function argumentConstraintFromRequest(
  c: core.ArgumentConstraint,
  field: string,
): ArgumentConstraint {
  const argument = c.argument;
  const rule = c.rule;
  switch (rule?.$case) {
    case 'oneOf':
      return {
        argument,
        kind: 'one_of',
        values: rule.value.values.map((v, i) =>
          scalarFromRequest(v, `${field}.oneOf.values[${i}]`),
        ),
      };
    case 'pattern':
      return { argument, kind: 'pattern', pattern: rule.value };
    case 'maxLength':
      return { argument, kind: 'max_length', maxLength: rule.value };
    case 'range':
      return {
        argument,
        kind: 'range',
        ...(rule.value.min !== undefined && { min: rule.value.min }),
        ...(rule.value.max !== undefined && { max: rule.value.max }),
      };
    case 'absent':
      return { argument, kind: 'absent' };
    case undefined:
      throw invalidInput(field, 'must set exactly one of oneOf, pattern, maxLength, range, absent');
  }
}

/** A hcp.grants.v1.CreateGrantRequest, checked. */
export function createGrantRequestFromProto(r: grants.CreateGrantRequest): CreateGrantFacts {
  const L = GRANT_LIST_LIMITS;
  const expiresAt = timestampFromProto(r.expiresAt, 'expiresAt');
  return {
    principalId: r.principalId,
    capabilities: [...boundedList(r.capabilities, 'capabilities', L.capabilitiesPerGrant)],
    resourcePatterns: boundedList(r.resourcePatterns, 'resourcePatterns', L.patternsPerGrant).map(
      (p, i) => resourcePatternFromRequest(p, `resourcePatterns[${i}]`),
    ),
    scopes: [...boundedList(r.scopes, 'scopes', L.scopesPerGrant)],
    ...(expiresAt !== undefined && { expiresAt }),
    argumentConstraints: r.argumentConstraints.map((c, i) =>
      argumentConstraintFromRequest(c, `argumentConstraints[${i}]`),
    ),
  };
}

/** One resource argument of a PutCapability request: canonicaliser and role known, scopes bounded. */
export function resourceArgumentFromRequest(
  a: core.ResourceArgument,
  field: string,
): ResourceArgument {
  const scopes = boundedList(
    a.scopes,
    `${field}.scopes`,
    GRANT_LIST_LIMITS.scopesPerResourceArgument,
  );
  return {
    name: a.name,
    canonicalizer: known(
      a.canonicalizer,
      `${field}.canonicalizer`,
      enums.resourceKind,
      'RESOURCE_KIND_UNSPECIFIED',
    ),
    role: known(a.role, `${field}.role`, enums.resourceRole, 'RESOURCE_ROLE_UNSPECIFIED'),
    ...(scopes.length > 0 && { scopes: [...scopes] }),
    ...(a.many && { many: true }),
  };
}

/** A capability as PutCapability sends it: every enum known, UNSPECIFIED refused by field. */
export function capabilityFromRequest(c: core.Capability | undefined, field: string): Capability {
  if (c === undefined) throw invalidInput(field, 'is required');
  const effects = boundedList(
    c.effects,
    `${field}.effects`,
    GRANT_LIST_LIMITS.effectsPerCapability,
  ).map((e, i) => known(e, `${field}.effects[${i}]`, enums.effect, 'EFFECT_UNSPECIFIED'));
  const names = new Set<string>();
  const resourceArguments = boundedList(
    c.resourceArguments,
    `${field}.resourceArguments`,
    GRANT_LIST_LIMITS.resourceArgumentsPerCapability,
  ).map((a, i) => {
    const f = `${field}.resourceArguments[${i}]`;
    if (names.has(a.name)) throw invalidInput(`${f}.name`, `duplicates ${JSON.stringify(a.name)}`);
    names.add(a.name);
    return resourceArgumentFromRequest(a, f);
  });
  return {
    id: c.id,
    provider: c.provider,
    tool: c.tool,
    effects,
    risk: known(c.risk, `${field}.risk`, enums.risk, 'RISK_CLASS_UNSPECIFIED'),
    approvalRequired: c.approvalRequired,
    requiredScopes: [
      ...boundedList(c.requiredScopes, `${field}.requiredScopes`, GRANT_LIST_LIMITS.scopesPerGrant),
    ],
    resourceArguments,
    ...(c.definitionDigest !== '' && { definitionDigest: c.definitionDigest }),
  };
}

/** A hcp.grants.v1.RequestApprovalRequest, its TTL in millis. */
export function requestApprovalRequestFromProto(
  r: grants.RequestApprovalRequest,
): RequestApprovalFacts {
  const ttlMs = durationFromProto(r.ttl, 'ttl');
  return {
    principalId: r.principalId,
    capabilityId: r.capabilityId,
    bindingDigest: r.bindingDigest,
    ...(ttlMs !== undefined && { ttlMs }),
    summary: r.summary,
  };
}

/** A hcp.grants.v1.DecideApprovalRequest; the operator comes from the credential, not the body. */
export function decideApprovalRequestFromProto(r: grants.DecideApprovalRequest): {
  approvalId: string;
  verdict: ApprovalVerdictFacts;
} {
  return {
    approvalId: r.approvalId,
    verdict: known(r.verdict, 'verdict', verdicts, 'APPROVAL_VERDICT_UNSPECIFIED'),
  };
}

/** A domain approval as hcp.core.v1.Approval. */
export function approvalToProto(a: Approval): core.Approval {
  return {
    id: a.id,
    principalId: a.principalId,
    capabilityId: a.capabilityId,
    bindingDigest: a.bindingDigest,
    state: enums.approvalState.toWire(a.state),
    expiresAt: toTimestamp(a.expiresAt),
    consumedAt: a.consumedAt !== undefined ? toTimestamp(a.consumedAt) : undefined,
    decidedBy: a.decidedBy ?? '',
  };
}

/** An approval with its summary and request time (PendingApproval, GetApprovalResponse). */
export function pendingApprovalToProto(r: {
  readonly approval: Approval;
  readonly summary: string;
  readonly createdAt: number;
}): grants.PendingApproval {
  return {
    approval: approvalToProto(r.approval),
    summary: r.summary,
    createdAt: toTimestamp(r.createdAt),
  };
}
