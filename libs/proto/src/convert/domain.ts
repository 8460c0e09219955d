import {
  type ArgumentConstraint,
  type ArgumentResource,
  type Approval,
  type Capability,
  type Decision,
  type Effect,
  type Grant,
  type HandleRecord,
  type JsonScalar,
  type Principal,
  type ResourceArgument,
  type ResourceFacts,
  type ResourcePattern,
  type SessionFacts,
} from '@hcp/core';
import type * as core from '../generated/hcp/core/v1/core';
import { enums, fromTimestamp, toTimestamp } from './enums';

/**
 * Conversions between the domain model (@hcp/core) and ts-proto messages.
 * They reject nothing: a service validates what it receives before it trusts it;
 * these only translate between shapes that are already known good.
 */

/** A grant as grant-store sends it, in domain form. Unknown pattern shapes are dropped (they match nothing). */
export function grantFromProto(g: core.Grant): Grant {
  const patterns: ResourcePattern[] = [];
  for (const p of g.resourcePatterns) {
    const pattern = p.pattern;
    if (pattern === undefined) continue;
    switch (pattern.$case) {
      case 'pathPrefix':
        patterns.push({ kind: 'path_prefix', prefix: pattern.value });
        break;
      case 'hostSet': {
        const { hosts, cidrs, schemes, ports } = pattern.value;
        patterns.push({
          kind: 'host_set',
          hosts,
          cidrs,
          ...(schemes.length > 0 ? { schemes } : {}),
          ...(ports.length > 0 ? { ports } : {}),
        });
        break;
      }
      case 'exactId':
        patterns.push({ kind: 'exact_id', id: pattern.value });
        break;
    }
  }
  const expiresAt = fromTimestamp(g.expiresAt);
  const revokedAt = fromTimestamp(g.revokedAt);
  const constraints = g.argumentConstraints.map(argumentConstraintFromProto);
  return {
    id: g.id,
    principalId: g.principalId,
    capabilities: g.capabilities,
    resourcePatterns: patterns,
    scopes: g.scopes,
    createdAt: fromTimestamp(g.createdAt) ?? 0,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(revokedAt !== undefined ? { revokedAt } : {}),
    revision: g.revision,
    ...(constraints.length > 0 ? { argumentConstraints: constraints } : {}),
  };
}

/**
 * An argument constraint from the wire. Unlike an unknown resource pattern (dropped, which
 * narrows), an unreadable constraint must not be dropped, which would widen the grant: it
 * becomes an empty `one_of`, which no call satisfies. Unreadable values in a `one_of` are
 * dropped (that narrows).
 */
export function argumentConstraintFromProto(c: core.ArgumentConstraint): ArgumentConstraint {
  const argument = c.argument;
  const rule = c.rule;
  switch (rule?.$case) {
    case 'oneOf': {
      const values: JsonScalar[] = [];
      for (const v of rule.value.values) {
        const scalar = scalarFromProto(v);
        if (scalar !== undefined) values.push(scalar.value);
      }
      return { argument, kind: 'one_of', values };
    }
    case 'pattern':
      return { argument, kind: 'pattern', pattern: rule.value };
    case 'maxLength':
      return { argument, kind: 'max_length', maxLength: rule.value };
    case 'range':
      return {
        argument,
        kind: 'range',
        ...(rule.value.min !== undefined ? { min: rule.value.min } : {}),
        ...(rule.value.max !== undefined ? { max: rule.value.max } : {}),
      };
    case 'absent':
      return { argument, kind: 'absent' };
    case undefined:
      return { argument, kind: 'one_of', values: [] };
  }
}

function scalarFromProto(v: core.ScalarValue): { value: JsonScalar } | undefined {
  const value = v.value;
  switch (value?.$case) {
    case 'stringValue':
    case 'numberValue':
    case 'boolValue':
      return { value: value.value };
    case 'nullValue':
      return value.value ? { value: null } : undefined;
    case undefined:
      return undefined;
  }
}

/** A domain argument constraint as a ts-proto message. */
export function argumentConstraintToProto(c: ArgumentConstraint): core.ArgumentConstraint {
  const argument = c.argument;
  switch (c.kind) {
    case 'one_of':
      return {
        argument,
        rule: {
          $case: 'oneOf',
          value: { values: c.values.map(scalarToProto) },
        },
      };
    case 'pattern':
      return { argument, rule: { $case: 'pattern', value: c.pattern } };
    case 'max_length':
      return { argument, rule: { $case: 'maxLength', value: c.maxLength } };
    case 'range':
      return { argument, rule: { $case: 'range', value: { min: c.min, max: c.max } } };
    case 'absent':
      return { argument, rule: { $case: 'absent', value: {} } };
  }
}

function scalarToProto(v: JsonScalar): core.ScalarValue {
  if (v === null) return { value: { $case: 'nullValue', value: true } };
  if (typeof v === 'string') return { value: { $case: 'stringValue', value: v } };
  if (typeof v === 'number') return { value: { $case: 'numberValue', value: v } };
  return { value: { $case: 'boolValue', value: v } };
}

/** A domain grant as a ts-proto message. */
export function grantToProto(g: Grant): core.Grant {
  return {
    id: g.id,
    principalId: g.principalId,
    capabilities: [...g.capabilities],
    resourcePatterns: g.resourcePatterns.map((p): core.ResourcePattern => {
      switch (p.kind) {
        case 'path_prefix':
          return { pattern: { $case: 'pathPrefix', value: p.prefix } };
        case 'host_set':
          return {
            pattern: {
              $case: 'hostSet',
              value: {
                hosts: [...p.hosts],
                cidrs: [...p.cidrs],
                schemes: [...(p.schemes ?? [])],
                ports: [...(p.ports ?? [])],
              },
            },
          };
        case 'exact_id':
          return { pattern: { $case: 'exactId', value: p.id } };
      }
    }),
    scopes: [...g.scopes],
    createdAt: toTimestamp(g.createdAt),
    expiresAt: g.expiresAt !== undefined ? toTimestamp(g.expiresAt) : undefined,
    revokedAt: g.revokedAt !== undefined ? toTimestamp(g.revokedAt) : undefined,
    revision: g.revision ?? 0,
    argumentConstraints: (g.argumentConstraints ?? []).map(argumentConstraintToProto),
  };
}

/**
 * A resource argument as grant-store sends it. It is never dropped (that would let a call skip
 * its resource's check): an unknown canonicaliser reads as `id` (exact match only, the
 * narrowest) and an unknown role as `write`.
 */
export function resourceArgumentFromProto(a: core.ResourceArgument): ResourceArgument {
  return {
    name: a.name,
    canonicalizer: enums.resourceKind.fromWire(a.canonicalizer) ?? 'id',
    role: enums.resourceRole.fromWire(a.role) ?? 'write',
    ...(a.scopes.length > 0 ? { scopes: a.scopes } : {}),
    ...(a.many ? { many: true } : {}),
  };
}

/** A domain resource argument as a ts-proto message. */
export function resourceArgumentToProto(a: ResourceArgument): core.ResourceArgument {
  return {
    name: a.name,
    canonicalizer: enums.resourceKind.toWire(a.canonicalizer),
    role: enums.resourceRole.toWire(a.role),
    scopes: [...(a.scopes ?? [])],
    many: a.many === true,
  };
}

/** A capability as grant-store sends it. Unknown effects are dropped; an unknown risk reads as high. */
export function capabilityFromProto(c: core.Capability): Capability {
  const effects = c.effects
    .map((e) => enums.effect.fromWire(e))
    .filter((e): e is Effect => e !== undefined);
  return {
    id: c.id,
    provider: c.provider,
    tool: c.tool,
    effects,
    risk: enums.risk.fromWire(c.risk) ?? 'high',
    approvalRequired: c.approvalRequired,
    requiredScopes: c.requiredScopes,
    resourceArguments: c.resourceArguments.map(resourceArgumentFromProto),
    ...(c.definitionDigest !== '' ? { definitionDigest: c.definitionDigest } : {}),
  };
}

/** A domain capability as a ts-proto message. */
export function capabilityToProto(c: Capability): core.Capability {
  return {
    id: c.id,
    provider: c.provider,
    tool: c.tool,
    effects: c.effects.map((e) => enums.effect.toWire(e)),
    risk: enums.risk.toWire(c.risk),
    approvalRequired: c.approvalRequired,
    requiredScopes: [...c.requiredScopes],
    definitionDigest: c.definitionDigest ?? '',
    resourceArguments: c.resourceArguments.map(resourceArgumentToProto),
  };
}

/** An approval as grant-store sends it; an unknown state reads as pending (never as approved). */
export function approvalFromProto(a: core.Approval): Approval {
  const consumedAt = fromTimestamp(a.consumedAt);
  return {
    id: a.id,
    principalId: a.principalId,
    capabilityId: a.capabilityId,
    bindingDigest: a.bindingDigest,
    state: enums.approvalState.fromWire(a.state) ?? 'pending',
    expiresAt: fromTimestamp(a.expiresAt) ?? 0,
    ...(consumedAt !== undefined ? { consumedAt } : {}),
    ...(a.decidedBy !== '' ? { decidedBy: a.decidedBy } : {}),
  };
}

/** A decision as a ts-proto message (what Decide returns). */
export function decisionToProto(d: Decision): core.Decision {
  return {
    id: d.id,
    outcome: enums.outcome.toWire(d.outcome),
    reason: enums.reason.toWire(d.reason),
    invariant: d.invariant !== undefined ? enums.invariant.toWire(d.invariant) : 0,
    check: d.check,
    matchedGrantId: d.matchedGrantId ?? '',
    nearestGrant: d.nearestGrant
      ? { grantId: d.nearestGrant.grantId, mismatch: d.nearestGrant.mismatch }
      : undefined,
    approvalToConsume: d.approvalToConsume ?? '',
    explanation: d.explanation,
    decidedAt: toTimestamp(d.decidedAt),
    ablations: [...d.ablations],
    targetReason: d.targetReason !== undefined ? enums.reason.toWire(d.targetReason) : 0,
  };
}

/** A decision received over the wire, in domain form; anything unreadable becomes a deny. */
export function decisionFromProto(d: core.Decision): Decision {
  const outcome = enums.outcome.fromWire(d.outcome);
  const reason = enums.reason.fromWire(d.reason);
  const allow = outcome === 'allow' && reason === 'ALLOWED';
  const invariant = enums.invariant.fromWire(d.invariant);
  const targetReason = enums.reason.fromWire(d.targetReason);
  return {
    id: d.id,
    outcome: allow ? 'allow' : 'deny',
    reason: allow
      ? 'ALLOWED'
      : reason === undefined || reason === 'ALLOWED'
        ? 'POLICY_UNAVAILABLE'
        : reason,
    check: d.check,
    explanation: d.explanation,
    decidedAt: fromTimestamp(d.decidedAt) ?? 0,
    ablations: d.ablations,
    ...(invariant !== undefined ? { invariant } : {}),
    ...(d.matchedGrantId !== '' ? { matchedGrantId: d.matchedGrantId } : {}),
    ...(d.nearestGrant
      ? { nearestGrant: { grantId: d.nearestGrant.grantId, mismatch: d.nearestGrant.mismatch } }
      : {}),
    ...(d.approvalToConsume !== '' ? { approvalToConsume: d.approvalToConsume } : {}),
    ...(targetReason !== undefined ? { targetReason } : {}),
  };
}

/** A handle's metadata from the wire. */
export function handleFromProto(h: core.Handle): HandleRecord {
  return {
    id: h.id,
    ownerPrincipalId: h.ownerPrincipalId,
    producingCapability: h.producingCapability,
    labels: { ...h.labels },
    createdAt: fromTimestamp(h.createdAt) ?? 0,
    expiresAt: fromTimestamp(h.expiresAt) ?? 0,
    sizeBytes: h.sizeBytes,
  };
}

/** A principal as a ts-proto message. */
export function principalToProto(p: Principal): core.Principal {
  return { id: p.id, kind: enums.principalKind.toWire(p.kind), displayName: p.displayName ?? '' };
}

/** Session facts as a ts-proto message. */
export function sessionToProto(s: SessionFacts): core.SessionFacts {
  return {
    state: enums.sessionState.toWire(s.state),
    id: s.id ?? '',
    initialized: s.initialized,
    ownerPrincipalId: s.ownerPrincipalId ?? '',
    negotiatedVersion: s.negotiatedVersion ?? '',
    requestVersion: s.requestVersion ?? '',
  };
}

/** A canonicaliser verdict as a ts-proto message. */
export function resourceFactsToProto(f: ResourceFacts): core.ResourceFacts {
  if (f.status === 'resolved') {
    const r = f.resource;
    return {
      facts: {
        $case: 'resolved',
        value: {
          kind: enums.resourceKind.toWire(r.kind),
          raw: r.raw,
          canonical: r.canonical,
          host: r.host ?? '',
          addresses: [...(r.addresses ?? [])],
          scheme: r.scheme ?? '',
          port: r.port ?? 0,
        },
      },
    };
  }
  return {
    facts: {
      $case: 'rejected',
      value: {
        status: enums.rejectionStatus.toWire(f.status),
        kind: enums.resourceKind.toWire(f.kind),
        raw: f.raw,
        rule: f.rule,
        detail: f.detail,
        canonical: f.canonical ?? '',
      },
    },
  };
}

/** One resource of a call (argument, element index, verdict) as a ts-proto message. */
export function argumentResourceToProto(r: ArgumentResource): core.ArgumentResource {
  return { argument: r.argument, index: r.index, facts: resourceFactsToProto(r.facts) };
}

/** Handle metadata as a ts-proto message. */
export function handleToProto(h: HandleRecord): core.Handle {
  return {
    id: h.id,
    ownerPrincipalId: h.ownerPrincipalId,
    producingCapability: h.producingCapability,
    labels: { ...h.labels },
    createdAt: toTimestamp(h.createdAt),
    expiresAt: toTimestamp(h.expiresAt),
    sizeBytes: h.sizeBytes,
  };
}
