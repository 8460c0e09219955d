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
 * Finds the first grant (in the given order) that covers principal, capability, one canonical
 * resource, the capability's required scopes plus `argumentScopes` (those the resource's argument
 * declares for its role) and the call's arguments at `now`; otherwise the nearest one and why it
 * failed.
 */
export function matchGrant(
  principalId: string,
  grants: readonly Grant[],
  capability: Capability,
  resource: CanonicalResource | undefined,
  now: EpochMillis,
  args?: CallArguments,
  options: MatchOptions = NO_OPTIONS,
): GrantMatch {
  const argumentScopes = options.argumentScopes ?? NO_SCOPES;
  const anyPort = options.anySchemeAndPort === true;
  let nearest: Grant | undefined;
  let nearestStage = Stage.Revoked;
  for (const grant of grants) {
    if (grant.principalId !== principalId) continue;
    const stage = evaluate(grant, capability, resource, now, args, argumentScopes, anyPort);
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
      mismatch: describe(nearestStage, nearest, capability, resource, args, argumentScopes),
    },
  };
}

function evaluate(
  grant: Grant,
  capability: Capability,
  resource: CanonicalResource | undefined,
  now: EpochMillis,
  args: CallArguments | undefined,
  argumentScopes: readonly string[],
  anyPort: boolean,
): Stage {
  if (!grantIsLive(grant, now))
    return grant.revokedAt !== undefined && grant.revokedAt <= now ? Stage.Revoked : Stage.Expired;
  if (!coversCapability(grant.capabilities, capability)) return Stage.Capability;
  if (capability.resourceArguments.length > 0) {
    if (resource === undefined) return Stage.Resource;
    if (!grant.resourcePatterns.some((p) => patternMatches(p, resource, anyPort)))
      return Stage.Resource;
  }
  for (const scope of capability.requiredScopes) {
    if (!grant.scopes.includes(scope)) return Stage.Scopes;
  }
  for (const scope of argumentScopes) {
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
  argumentScopes: readonly string[],
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
      return `missing scope ${[...capability.requiredScopes, ...argumentScopes].find((s) => !grant.scopes.includes(s)) ?? ''}`;
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

/**
 * Matches one pattern against a canonical resource; a pattern of another kind never matches.
 * `anySchemeAndPort` (the `url_scheme_port` ablation, benchmark only) skips the scheme/port rule.
 */
export function patternMatches(
  pattern: ResourcePattern,
  resource: CanonicalResource,
  anySchemeAndPort = false,
): boolean {
  switch (pattern.kind) {
    case 'path_prefix':
      return resource.kind === 'path' && pathWithin(resource.canonical, pattern.prefix);
    case 'host_set':
      return (
        resource.kind === 'url' &&
        (anySchemeAndPort || schemeAndPortAllowed(pattern, resource)) &&
        hostSetMatches(pattern, resource)
      );
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

const NO_SCOPES: readonly string[] = [];

/** How one match is made beyond the grant itself. */
export interface MatchOptions {
  /** Scopes the resource's argument declares for its role, on top of the capability's. */
  readonly argumentScopes?: readonly string[];
  /** The `url_scheme_port` ablation (benchmark only): a host grant covers every scheme and port. */
  readonly anySchemeAndPort?: boolean;
}

const NO_OPTIONS: MatchOptions = {};

/** The port a URL uses when it names none; a scheme not listed has no default (fail closed). */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };
const DEFAULT_SCHEMES: readonly string[] = ['http', 'https'];

/**
 * The scheme and port of a canonical URL resource: the canonicaliser's fields, or (for a resource
 * built without them) parsed from the canonical URL. Undefined when neither is known.
 */
function schemeAndPort(resource: CanonicalResource): { scheme: string; port: number } | undefined {
  let scheme = resource.scheme;
  let port = resource.port;
  if (scheme === undefined || port === undefined) {
    let url: URL;
    try {
      url = new URL(resource.canonical);
    } catch {
      return undefined;
    }
    scheme ??= url.protocol.slice(0, -1).toLowerCase();
    port ??= url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
  }
  return port === undefined ? undefined : { scheme, port };
}

/**
 * A host_set's scheme and port rule: the URL's scheme is one the pattern lists (http and https
 * when it lists none) and its port is one the pattern lists, or, when it lists none, the default
 * port of the URL's scheme. `http://example.org:18080/` is not `example.org`.
 */
function schemeAndPortAllowed(
  pattern: Extract<ResourcePattern, { kind: 'host_set' }>,
  resource: CanonicalResource,
): boolean {
  const target = schemeAndPort(resource);
  if (target === undefined) return false;
  const schemes =
    pattern.schemes !== undefined && pattern.schemes.length > 0 ? pattern.schemes : DEFAULT_SCHEMES;
  if (!schemes.some((s) => s.toLowerCase() === target.scheme)) return false;
  if (pattern.ports !== undefined && pattern.ports.length > 0)
    return pattern.ports.includes(target.port);
  return DEFAULT_PORTS[target.scheme] === target.port;
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
