import ipaddr from 'ipaddr.js';
import type { CanonicalResource, Capability, EpochMillis, Grant, ResourcePattern } from '@hcp/core';

/** How far a grant got before it stopped matching; higher is nearer to a match. */
enum Stage {
  Revoked = 0,
  Expired = 1,
  Capability = 2,
  Resource = 3,
  Scopes = 4,
  Matched = 5,
}

/** Outcome of matching a principal's grants against one call (I5). */
export type GrantMatch =
  | { readonly matched: true; readonly grant: Grant }
  | {
      readonly matched: false;
      /** True when the nearest grant covered capability and resource but lacked a scope. */
      readonly scopeMissing: boolean;
      readonly nearest?: { readonly grantId: string; readonly mismatch: string };
    };

/**
 * Finds the first grant (in the given order) that covers principal, capability,
 * canonical resource and required scopes at `now`; otherwise the nearest one and why it failed.
 */
export function matchGrant(
  principalId: string,
  grants: readonly Grant[],
  capability: Capability,
  resource: CanonicalResource | undefined,
  now: EpochMillis,
): GrantMatch {
  let nearest: Grant | undefined;
  let nearestStage = Stage.Revoked;
  for (const grant of grants) {
    if (grant.principalId !== principalId) continue;
    const stage = evaluate(grant, capability, resource, now);
    if (stage === Stage.Matched) return { matched: true, grant };
    if (nearest === undefined || stage > nearestStage) {
      nearest = grant;
      nearestStage = stage;
    }
  }
  if (nearest === undefined) return { matched: false, scopeMissing: false };
  // The mismatch text is built once, for the nearest grant only: matching stays allocation-free.
  return {
    matched: false,
    scopeMissing: nearestStage === Stage.Scopes,
    nearest: {
      grantId: nearest.id,
      mismatch: describe(nearestStage, nearest, capability, resource),
    },
  };
}

function evaluate(
  grant: Grant,
  capability: Capability,
  resource: CanonicalResource | undefined,
  now: EpochMillis,
): Stage {
  if (grant.revokedAt !== undefined && grant.revokedAt <= now) return Stage.Revoked;
  if (grant.expiresAt !== undefined && grant.expiresAt <= now) return Stage.Expired;
  if (!coversCapability(grant.capabilities, capability)) return Stage.Capability;
  if (capability.resourceArgument !== undefined) {
    if (resource === undefined) return Stage.Resource;
    if (!grant.resourcePatterns.some((p) => patternMatches(p, resource))) return Stage.Resource;
  }
  for (const scope of capability.requiredScopes) {
    if (!grant.scopes.includes(scope)) return Stage.Scopes;
  }
  return Stage.Matched;
}

function describe(
  stage: Stage,
  grant: Grant,
  capability: Capability,
  resource: CanonicalResource | undefined,
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
    case Stage.Matched:
      return 'matched';
  }
}

/** True when a grant's capability list names the capability or its provider wildcard. */
export function coversCapability(list: readonly string[], capability: Capability): boolean {
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
