import { isIP } from 'node:net';
import {
  RESOURCE_ROLES,
  type ArgumentConstraint,
  type Capability,
  type ResourceArgument,
  type ResourcePattern,
} from '@hcp/core';
import { invalidArgument } from '@hcp/platform';
import { ARGUMENT_CONSTRAINT_LIMITS, argumentConstraintProblem } from '@hcp/policy';
import { GRANT_LIST_LIMITS, URL_SCHEME } from '@hcp/proto';

/**
 * Size bounds on everything grant-store stores. They keep one grant, one
 * capability and one approval small enough that the decision cache can hold
 * thousands, and make an oversize request a clear INPUT_INVALID instead of a
 * slow query or a huge row.
 */
export const LIMITS = {
  // The list bounds are the wire converters', so a request is bounded once, the same way.
  ...GRANT_LIST_LIMITS,
  idLength: 128,
  principalIdLength: 256,
  capabilityIdLength: 193,
  providerLength: 64,
  toolLength: 128,
  pathLength: 4096,
  hostLength: 253,
  exactIdLength: 1024,
  scopeLength: 128,
  reasonLength: 1024,
  summaryLength: 2000,
  argumentNameLength: 128,
  pageTokenLength: 1024,
} as const;

// Control characters never belong in an identifier; they are how log lines and audit rows get forged.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A required, bounded, printable string with no surrounding whitespace. */
export function requireText(field: string, value: string, max: number): string {
  if (value.length === 0) throw invalidArgument(field, 'is required');
  checkText(field, value, max);
  return value;
}

/** An optional (empty allowed) bounded printable string. */
export function optionalText(field: string, value: string, max: number): string {
  if (value.length > 0) checkText(field, value, max);
  return value;
}

// Free text may span lines; every other control character is still refused.
// eslint-disable-next-line no-control-regex
const FREE_TEXT_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** Operator-facing free text (a revoke reason, an approval summary): bounded, lines and tabs allowed. */
export function optionalFreeText(field: string, value: string, max: number): string {
  if (value.length > max) throw invalidArgument(field, `is longer than ${max} characters`);
  if (FREE_TEXT_CONTROL.test(value)) throw invalidArgument(field, 'contains a control character');
  return value;
}

function checkText(field: string, value: string, max: number): void {
  if (value.length > max) throw invalidArgument(field, `is longer than ${max} characters`);
  if (CONTROL.test(value)) throw invalidArgument(field, 'contains a control character');
  if (value.trim() !== value) throw invalidArgument(field, 'has leading or trailing whitespace');
}

/** A list no longer than `max`, for checking before anything iterates it. */
export function requireBoundedList<T>(field: string, list: readonly T[], max: number): void {
  if (list.length > max) throw invalidArgument(field, `has more than ${max} entries`);
}

/** Rejects the first repeated entry, naming its index. */
export function requireUnique(field: string, list: readonly string[]): void {
  const seen = new Set<string>();
  list.forEach((entry, i) => {
    if (seen.has(entry)) throw invalidArgument(`${field}[${i}]`, `duplicates ${entry}`);
    seen.add(entry);
  });
}

// Provider and tool names: the MCP tool-name alphabet. No `/` (the id separator) and no `*` (the wildcard).
const NAME = /^[A-Za-z0-9_.-]+$/;

/** `provider/tool` or `provider/*`, split; undefined when the shape is wrong. */
export function parseCapabilityRef(value: string): { provider: string; tool: string } | undefined {
  const slash = value.indexOf('/');
  if (slash <= 0 || slash !== value.lastIndexOf('/')) return undefined;
  const provider = value.slice(0, slash);
  const tool = value.slice(slash + 1);
  if (provider.length > LIMITS.providerLength || !NAME.test(provider)) return undefined;
  if (tool !== '*' && (tool.length > LIMITS.toolLength || !NAME.test(tool))) return undefined;
  return { provider, tool };
}

/** A provider name as the manifest keys it. */
export function requireProvider(field: string, value: string): string {
  requireText(field, value, LIMITS.providerLength);
  if (!NAME.test(value)) throw invalidArgument(field, 'may contain only letters, digits, _ . -');
  return value;
}

/** A tool name as the provider advertises it. */
export function requireTool(field: string, value: string): string {
  requireText(field, value, LIMITS.toolLength);
  if (!NAME.test(value)) throw invalidArgument(field, 'may contain only letters, digits, _ . -');
  return value;
}

/** A scope name: non-empty, bounded, no whitespace (scopes are compared exactly). */
export function requireScope(field: string, value: string): string {
  requireText(field, value, LIMITS.scopeLength);
  if (/\s/.test(value)) throw invalidArgument(field, 'must not contain whitespace');
  return value;
}

/** Scopes of a grant or a capability: bounded, each valid, no repeats. */
export function requireScopes(field: string, scopes: readonly string[]): void {
  requireBoundedList(field, scopes, LIMITS.scopesPerGrant);
  scopes.forEach((s, i) => requireScope(`${field}[${i}]`, s));
  requireUnique(field, scopes);
}

/**
 * A canonical absolute path as the canonicaliser produces it: absolute, no
 * `.`/`..` segments, no repeated or trailing slash. A pattern in any other
 * spelling would never match a canonical resource (or worse, look as if it
 * covered less than it does), so it is refused rather than normalised.
 */
export function requirePathPrefix(field: string, value: string): string {
  requireText(field, value, LIMITS.pathLength);
  if (!value.startsWith('/')) throw invalidArgument(field, 'must be an absolute path');
  if (value === '/') return value;
  if (value.endsWith('/')) throw invalidArgument(field, 'must not end with /');
  const segments = value.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') throw invalidArgument(field, 'must not contain repeated slashes');
    if (segment === '.' || segment === '..')
      throw invalidArgument(field, `must be normalised (no ${segment} segments)`);
  }
  return value;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

function isHostName(value: string): boolean {
  return value.length <= LIMITS.hostLength && value.split('.').every((l) => LABEL.test(l));
}

/** A host entry: a lower-case name, `*.suffix` (suffix with at least two labels), or an address literal. */
export function requireHost(field: string, value: string): string {
  requireText(field, value, LIMITS.hostLength);
  if (value !== value.toLowerCase()) throw invalidArgument(field, 'must be lower-case');
  if (!value.includes('%') && isIP(value) !== 0) return value;
  if (value.startsWith('*.')) {
    const suffix = value.slice(2);
    if (!isHostName(suffix) || !suffix.includes('.'))
      throw invalidArgument(field, 'wildcard must be *.<domain> with at least two labels');
    return value;
  }
  if (!isHostName(value)) throw invalidArgument(field, 'is not a valid host name or address');
  return value;
}

/** An IPv4 or IPv6 CIDR range, strictly formatted (the engine treats a malformed one as matching nothing). */
export function requireCidr(field: string, value: string): string {
  requireText(field, value, 64);
  const slash = value.indexOf('/');
  if (slash < 0) throw invalidArgument(field, 'must be <address>/<prefix length>');
  const address = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const version = address.includes('%') ? 0 : isIP(address);
  if (version === 0) throw invalidArgument(field, `${address} is not an IP address`);
  const max = version === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || Number(bits) > max)
    throw invalidArgument(field, `prefix length must be 0..${max}`);
  return value;
}

/** A URL scheme a host set allows: lower case, without its colon (`https`). */
export function requireScheme(field: string, value: string): string {
  if (!URL_SCHEME.test(value))
    throw invalidArgument(field, 'must be a lower-case URL scheme without its colon (e.g. https)');
  return value;
}

/** A port a host set allows: an integer 1..65535. */
export function requirePort(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65_535)
    throw invalidArgument(field, 'must be a port 1..65535');
  return value;
}

/** One resource pattern, checked for the rules of its kind. */
export function requireResourcePattern(field: string, pattern: ResourcePattern): void {
  switch (pattern.kind) {
    case 'path_prefix':
      requirePathPrefix(`${field}.pathPrefix`, pattern.prefix);
      return;
    case 'exact_id':
      requireText(`${field}.exactId`, pattern.id, LIMITS.exactIdLength);
      return;
    case 'host_set': {
      const f = `${field}.hostSet`;
      if (pattern.hosts.length === 0 && pattern.cidrs.length === 0)
        throw invalidArgument(f, 'needs at least one host or CIDR');
      requireBoundedList(`${f}.hosts`, pattern.hosts, LIMITS.hostsPerSet);
      requireBoundedList(`${f}.cidrs`, pattern.cidrs, LIMITS.cidrsPerSet);
      pattern.hosts.forEach((h, i) => requireHost(`${f}.hosts[${i}]`, h));
      pattern.cidrs.forEach((c, i) => requireCidr(`${f}.cidrs[${i}]`, c));
      const schemes = pattern.schemes ?? [];
      requireBoundedList(`${f}.schemes`, schemes, LIMITS.schemesPerSet);
      schemes.forEach((v, i) => requireScheme(`${f}.schemes[${i}]`, v));
      requireUnique(`${f}.schemes`, schemes);
      const ports = pattern.ports ?? [];
      requireBoundedList(`${f}.ports`, ports, LIMITS.portsPerSet);
      ports.forEach((v, i) => requirePort(`${f}.ports[${i}]`, v));
      requireUnique(`${f}.ports`, ports.map(String));
      return;
    }
  }
}

/**
 * A grant's argument constraints, checked by the engine's own rules (libs/policy), so what is
 * stored is exactly what the engine can evaluate: a pattern RE2 refuses, or one over the length
 * bound, is INPUT_INVALID here rather than a constraint that silently never holds.
 */
export function requireArgumentConstraints(
  field: string,
  constraints: readonly ArgumentConstraint[],
): void {
  requireBoundedList(field, constraints, ARGUMENT_CONSTRAINT_LIMITS.constraintsPerGrant);
  constraints.forEach((c, i) => {
    const problem = argumentConstraintProblem(c);
    if (problem !== undefined)
      throw invalidArgument(`${field}[${i}].${problem.field}`, problem.message);
  });
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** An approval binding digest as `approvalBindingDigest` produces it. */
export function requireBindingDigest(field: string, value: string): string {
  if (value.length === 0) throw invalidArgument(field, 'is required');
  if (!DIGEST.test(value))
    throw invalidArgument(field, 'must be sha256:<64 lower-case hex> (approvalBindingDigest)');
  return value;
}

/**
 * A pinned tool-definition digest. The proto says lower-case hex SHA-256 and
 * libs/core's digestOf writes `sha256:<hex>`; both spellings are accepted and
 * stored as given, because the engine compares the pinned value verbatim with
 * the digest the edge observes.
 */
export function requireDefinitionDigest(field: string, value: string): string {
  if (!/^(sha256:)?[0-9a-f]{64}$/.test(value))
    throw invalidArgument(field, 'must be a lower-case hex SHA-256, optionally prefixed sha256:');
  return value;
}

const CANONICALIZERS: readonly string[] = ['path', 'url', 'id'];

/** A capability's resource arguments: bounded, names unique, each with a known kind and role. */
export function requireResourceArguments(field: string, args: readonly ResourceArgument[]): void {
  requireBoundedList(field, args, LIMITS.resourceArgumentsPerCapability);
  args.forEach((a, i) => {
    const f = `${field}[${i}]`;
    requireText(`${f}.name`, a.name, LIMITS.argumentNameLength);
    if (!CANONICALIZERS.includes(a.canonicalizer))
      throw invalidArgument(`${f}.canonicalizer`, `must be one of ${CANONICALIZERS.join(', ')}`);
    if (!RESOURCE_ROLES.includes(a.role))
      throw invalidArgument(`${f}.role`, `must be one of ${RESOURCE_ROLES.join(', ')}`);
    requireScopes(`${f}.scopes`, a.scopes ?? []);
  });
  requireUnique(
    field,
    args.map((a) => a.name),
  );
}

/** The whole capability as the manifest stores it; `provider`/`tool` must spell out the id. */
export function requireCapability(field: string, c: Capability): void {
  requireText(`${field}.id`, c.id, LIMITS.capabilityIdLength);
  const provider = requireProvider(`${field}.provider`, c.provider);
  const tool = requireTool(`${field}.tool`, c.tool);
  if (c.id !== `${provider}/${tool}`)
    throw invalidArgument(`${field}.id`, `must be ${provider}/${tool} (provider/tool)`);
  requireBoundedList(`${field}.effects`, c.effects, LIMITS.effectsPerCapability);
  requireUnique(`${field}.effects`, c.effects);
  requireScopes(`${field}.requiredScopes`, c.requiredScopes);
  requireResourceArguments(`${field}.resourceArguments`, c.resourceArguments);
  if (c.definitionDigest !== undefined)
    requireDefinitionDigest(`${field}.definitionDigest`, c.definitionDigest);
}
