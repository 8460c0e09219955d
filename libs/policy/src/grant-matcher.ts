import ipaddr from 'ipaddr.js';
import type { CanonicalResource, Capability, EpochMillis, Grant, ResourcePattern } from '@hcp/core';
import {
  describeBrokenConstraint,
  firstBrokenConstraint,
  type CallArguments,
} from './argument-constraints';

/** How far a grant got before it stopped matching; higher is nearer to a match. */
enum Stage {
  Revoked = 0,
  Expired = 1,
  Capability = 2,
  Resource = 3,
  Scopes = 4,
  Arguments = 5,
  Matched = 6,
}

/** Outcome of matching a principal's grants against one call (I5). */
export type GrantMatch =
  | { readonly matched: true; readonly grant: Grant }
  | {
      readonly matched: false;
      /**
       * SCOPE_MISSING when the nearest grant covered capability and resource but lacked a scope;
       * ARGUMENT_NOT_GRANTED when it also had the scopes but the arguments broke a constraint.
       */
      readonly reason: 'NO_MATCHING_GRANT' | 'SCOPE_MISSING' | 'ARGUMENT_NOT_GRANTED';
      readonly nearest?: { readonly grantId: string; readonly mismatch: string };
    };

/**
 * Finds the first grant (in the given order) that covers principal, capability, canonical
 * resource, required scopes and the call's arguments at `now`; otherwise the nearest one and
 * why it failed.
 */
export function matchGrant(
  principalId: string,
  grants: readonly Grant[],
  capability: Capability,
  resource: CanonicalResource | undefined,
  now: EpochMillis,
  args?: CallArguments,
): GrantMatch {
  let nearest: Grant | undefined;
  let nearestStage = Stage.Revoked;
  for (const grant of grants) {
    if (grant.principalId !== principalId) continue;
    const stage = evaluate(grant, capability, resource, now, args);
    if (stage === Stage.Matched) return { matched: true, grant };
    if (nearest === undefined || stage > nearestStage) {
      nearest = grant;
      nearestStage = stage;
    }
  }
  if (nearest === undefined) return { matched: false, reason: 'NO_MATCHING_GRANT' };
  // The mismatch text is built once, for the nearest grant only: matching stays allocation-free.
  return {
    matched: false,
    reason:
      nearestStage === Stage.Scopes
        ? 'SCOPE_MISSING'
        : nearestStage === Stage.Arguments
          ? 'ARGUMENT_NOT_GRANTED'
          : 'NO_MATCHING_GRANT',
    nearest: {
      grantId: nearest.id,
      mismatch: describe(nearestStage, nearest, capability, resource, args),
    },
  };
}

function evaluate(
  grant: Grant,
  capability: Capability,
  resource: CanonicalResource | undefined,
  now: EpochMillis,
  args: CallArguments | undefined,
): Stage {
  if (!grantIsLive(grant, now))
    return grant.revokedAt !== undefined && grant.revokedAt <= now ? Stage.Revoked : Stage.Expired;
  if (!coversCapability(grant.capabilities, capability)) return Stage.Capability;
  if (capability.resourceArgument !== undefined) {
    if (resource === undefined) return Stage.Resource;
    if (!grant.resourcePatterns.some((p) => patternMatches(p, resource))) return Stage.Resource;
  }
  for (const scope of capability.requiredScopes) {
    if (!grant.scopes.includes(scope)) return Stage.Scopes;
  }
  // Last, so a constrained grant is only "nearer" than one that failed on the tool or resource.
  const constraints = grant.argumentConstraints;
  if (constraints !== undefined && constraints.length > 0) {
    if (firstBrokenConstraint(constraints, args) !== undefined) return Stage.Arguments;
  }
  return Stage.Matched;
}

function describe(
  stage: Stage,
  grant: Grant,
  capability: Capability,
  resource: CanonicalResource | undefined,
  args: CallArguments | undefined,
): string {
  switch (stage) {
    case Stage.Revoked:
      return 'grant revoked';
    case Stage.Expired:
      return 'grant expired';
    case Stage.Capability:
      return `capability ${capability.id} not in grant`;
    case Stage.Resource:
      return resource === undefined
        ? 'no canonical resource to match'
        : `resource ${resource.canonical} not covered by any pattern`;
    case Stage.Scopes:
      return `missing scope ${capability.requiredScopes.find((s) => !grant.scopes.includes(s)) ?? ''}`;
    case Stage.Arguments: {
      const broken = firstBrokenConstraint(grant.argumentConstraints, args);
      return broken === undefined ? 'arguments' : describeBrokenConstraint(broken, args);
    }
    case Stage.Matched:
      return 'matched';
  }
}

/**
 * True when a grant is in force at `now`: neither revoked nor expired. The liveness rule matching
 * applies first, exported so discovery (the edge's tools/list) uses this one rule, not a copy.
 */
export function grantIsLive(grant: Grant, now: EpochMillis): boolean {
  return (
    (grant.revokedAt === undefined || grant.revokedAt > now) &&
    (grant.expiresAt === undefined || grant.expiresAt > now)
  );
}

/** True when a grant's capability list names the capability or its provider wildcard. */
export function coversCapability(
  list: readonly string[],
  capability: Pick<Capability, 'id' | 'provider'>,
): boolean {
  for (const entry of list) {
    if (entry === capability.id) return true;
    if (entry.endsWith('/*') && entry.slice(0, -2) === capability.provider) return true;
  }
  return false;
}

/** Matches one pattern against a canonical resource; a pattern of another kind never matches. */
export function patternMatches(pattern: ResourcePattern, resource: CanonicalResource): boolean {
  switch (pattern.kind) {
    case 'path_prefix':
      return resource.kind === 'path' && pathWithin(resource.canonical, pattern.prefix);
    case 'host_set':
      return resource.kind === 'url' && hostSetMatches(pattern, resource);
    case 'exact_id':
      return resource.kind === 'id' && resource.canonical === pattern.id;
  }
}

/** Segment-boundary containment: `/data/app` admits `/data/app` and `/data/app/x`, never `/data/app_evil`. */
export function pathWithin(path: string, prefix: string): boolean {
  if (prefix === '' || !prefix.startsWith('/') || !path.startsWith('/')) return false;
  const base = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (base === '/') return true;
  if (path === base) return true;
  return path.length > base.length && path.startsWith(base) && path.charCodeAt(base.length) === 47; // '/'
}

type ParsedCidr = [ipaddr.IPv4 | ipaddr.IPv6, number];
const cidrCache = new WeakMap<readonly string[], ParsedCidr[]>();

function parsedCidrs(cidrs: readonly string[]): ParsedCidr[] {
  let parsed = cidrCache.get(cidrs);
  if (parsed === undefined) {
    parsed = [];
    for (const c of cidrs) {
      // A malformed CIDR in a grant matches nothing: fail closed, never widen.
      if (ipaddr.isValidCIDR(c)) parsed.push(ipaddr.parseCIDR(c));
    }
    cidrCache.set(cidrs, parsed);
  }
  return parsed;
}

function hostSetMatches(
  pattern: Extract<ResourcePattern, { kind: 'host_set' }>,
  resource: CanonicalResource,
): boolean {
  const host = resource.host?.toLowerCase();
  if (host !== undefined) {
    for (const entry of pattern.hosts) {
      const e = entry.toLowerCase();
      if (e === host) return true;
      if (e.startsWith('*.') && host.length > e.length - 1 && host.endsWith(e.slice(1)))
        return true;
    }
  }
  const addresses = resource.addresses ?? [];
  if (pattern.cidrs.length === 0 || addresses.length === 0) return false;
  const ranges = parsedCidrs(pattern.cidrs);
  return addresses.every((a) => {
    if (!ipaddr.isValid(a)) return false;
    const addr = ipaddr.parse(a);
    return ranges.some(([net, bits]) => addr.kind() === net.kind() && addr.match(net, bits));
  });
}
