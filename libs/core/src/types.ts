import type { InvariantId } from './invariants';
import type { ReasonCode } from './reason-codes';

/** Milliseconds since the Unix epoch; every time in the domain model uses it. */
export type EpochMillis = number;

/** Who a principal is, which bounds what it may ever do (an agent never reads the audit). */
export type PrincipalKind = 'agent' | 'operator' | 'service';

/** An authenticated caller. Identity comes from the credential, never from a request body. */
export interface Principal {
  readonly id: string;
  readonly kind: PrincipalKind;
  readonly displayName?: string;
}

/** How a resource argument is canonicalised before policy sees it. */
export type ResourceKind = 'path' | 'url' | 'id';

/** A resource as the provider will see it (I3): policy never matches on the caller's string. */
export interface CanonicalResource {
  readonly kind: ResourceKind;
  /** The value the caller sent, kept for audit. */
  readonly raw: string;
  /** The resolved form: real path, normalised URL, or exact id. */
  readonly canonical: string;
  /** For URLs: the lower-case host name or address literal. */
  readonly host?: string;
  /** For URLs: every address the host resolved to, each classified by the canonicaliser. */
  readonly addresses?: readonly string[];
  /** For URLs: the lower-case scheme without its colon (`https`). */
  readonly scheme?: string;
  /** For URLs: the port the request goes to, the scheme's default when the URL names none. */
  readonly port?: number;
}

/**
 * What the canonicaliser concluded about a resource argument. A denial or an
 * unresolvable value is carried to the engine so the decision (and its audit
 * entry) records it; it is never turned into an allow.
 */
export type ResourceFacts =
  | { readonly status: 'resolved'; readonly resource: CanonicalResource }
  | {
      readonly status: 'denied' | 'unresolvable' | 'invalid';
      readonly kind: ResourceKind;
      readonly raw: string;
      /** The canonicaliser rule that fired, e.g. `path.outside_roots`, `url.private_address`. */
      readonly rule: string;
      readonly detail: string;
      /** The canonical value when it was computed before the rule fired. */
      readonly canonical?: string;
    };

/** Which resources a grant covers. Matched against canonical values only. */
export type ResourcePattern =
  /** A canonical absolute path: the path itself and everything below it, on a segment boundary. */
  | { readonly kind: 'path_prefix'; readonly prefix: string }
  /**
   * URL hosts: exact names or `*.suffix`, and/or CIDR ranges every resolved address must fall in;
   * and the schemes and ports a URL may use. Absent or empty `schemes`: http and https. Absent or
   * empty `ports`: only the default port of the URL's scheme (80 for http, 443 for https).
   */
  | {
      readonly kind: 'host_set';
      readonly hosts: readonly string[];
      readonly cidrs: readonly string[];
      readonly schemes?: readonly string[];
      readonly ports?: readonly number[];
    }
  /** An opaque resource id, matched exactly. */
  | { readonly kind: 'exact_id'; readonly id: string };

/** A JSON scalar, the only kind of value a `one_of` argument constraint lists. */
export type JsonScalar = string | number | boolean | null;

/** The rule of an argument constraint, one kind per way a grant can narrow an argument. */
export type ArgumentRule =
  /** The argument equals one of these scalars (JSON equality; objects and arrays never match). */
  | { readonly kind: 'one_of'; readonly values: readonly JsonScalar[] }
  /** The argument is a string the RE2 pattern matches in full (implicitly anchored). */
  | { readonly kind: 'pattern'; readonly pattern: string }
  /** The argument is a string of at most `maxLength` Unicode code points. */
  | { readonly kind: 'max_length'; readonly maxLength: number }
  /** The argument is a finite number within [min, max]; at least one bound is set. */
  | { readonly kind: 'range'; readonly min?: number; readonly max?: number }
  /** The argument is not present (a JSON null counts as present). */
  | { readonly kind: 'absent' };

/**
 * A rule on one top-level argument of a call, so a grant can narrow what a tool may be called
 * with and not only which tool (I5). Constraints only ever narrow a grant; a missing argument
 * fails every rule except `absent`. Semantics in docs/policy.md ("Argument constraints").
 */
export type ArgumentConstraint = { readonly argument: string } & ArgumentRule;

/** What a principal may do: capabilities x resources x scopes, until it expires or is revoked. */
export interface Grant {
  readonly id: string;
  readonly principalId: string;
  /** Capability ids (`provider/tool`) or a provider wildcard (`provider/*`). */
  readonly capabilities: readonly string[];
  /** Empty means the grant covers only capabilities that take no resource argument. */
  readonly resourcePatterns: readonly ResourcePattern[];
  readonly scopes: readonly string[];
  readonly createdAt: EpochMillis;
  readonly expiresAt?: EpochMillis;
  readonly revokedAt?: EpochMillis;
  /** Per-principal revision at which the grant was written; caches compare it. */
  readonly revision?: number;
  /** Rules on the call's arguments, all of which must hold; absent or empty: unconstrained. */
  readonly argumentConstraints?: readonly ArgumentConstraint[];
}

/** A side effect a tool may have; declared in the manifest, never taken from a tool description. */
export type Effect = 'read' | 'write' | 'delete' | 'network' | 'execute';

/** Risk class of a capability; `high` is the class an operator normally ties to approval. */
export type RiskClass = 'low' | 'medium' | 'high';

/**
 * What a call does to the resource one argument names: `read` (a source it reads), `write` (a
 * destination it creates or changes), `delete` (a source it removes or moves away), `fetch` (a
 * URL it requests), `send` (a recipient it delivers to). Shown to approvers and in the audit.
 */
export type ResourceRole = 'read' | 'write' | 'delete' | 'fetch' | 'send';

/** Every role, in a fixed order (validation and docs list them from here). */
export const RESOURCE_ROLES: readonly ResourceRole[] = ['read', 'write', 'delete', 'fetch', 'send'];

/**
 * One argument of a tool that names a resource, how to canonicalise it, and what the call does
 * to it. A capability declares every such argument (I3): each is canonicalised, and each must be
 * covered by a grant carrying the capability's required scopes plus the argument's own (I5).
 */
export interface ResourceArgument {
  readonly name: string;
  readonly canonicalizer: ResourceKind;
  readonly role: ResourceRole;
  /** Scopes the grant covering this argument's resource needs beyond the capability's. */
  readonly scopes?: readonly string[];
  /** True when the argument is an array of resources (read_multiple_files' `paths`): each is decided. */
  readonly many?: boolean;
}

/**
 * The canonicaliser's verdict on one resource a call names: which argument (and, for an array
 * argument, which element) and the facts. A call carries one per resource, in declaration order.
 */
export interface ArgumentResource {
  readonly argument: string;
  /** Position in an array argument (`many`); 0 for a single-valued argument. */
  readonly index: number;
  readonly facts: ResourceFacts;
}

/**
 * How a resource is named in explanations, audit entries and approval summaries: the argument,
 * with the element index for any element after the first of an array argument (`paths[1]`).
 */
export function resourceLabel(r: { readonly argument: string; readonly index: number }): string {
  return r.index === 0 ? r.argument : `${r.argument}[${r.index}]`;
}

/** A provider tool as the operator declared it in the capability manifest. */
export interface Capability {
  /** `provider/tool`. */
  readonly id: string;
  readonly provider: string;
  readonly tool: string;
  readonly effects: readonly Effect[];
  readonly risk: RiskClass;
  /** When true a call needs a grant AND an approval bound to the exact call (I2). */
  readonly approvalRequired: boolean;
  /** Scopes a matching grant must carry (I5). */
  readonly requiredScopes: readonly string[];
  /** Every argument that names a resource, in declaration order; empty: the tool takes none. */
  readonly resourceArguments: readonly ResourceArgument[];
  /** SHA-256 of the tool definition pinned when the provider was registered (I1). */
  readonly definitionDigest?: string;
}

/** State of an approval request in its lifecycle. */
export type ApprovalState = 'pending' | 'approved' | 'denied';

/** A human (or operator process) approval bound to one exact call by digest; single-use. */
export interface Approval {
  readonly id: string;
  readonly principalId: string;
  readonly capabilityId: string;
  /** `approvalBindingDigest` of (principal, capability, canonical resource, arguments digest). */
  readonly bindingDigest: string;
  readonly state: ApprovalState;
  readonly expiresAt: EpochMillis;
  readonly consumedAt?: EpochMillis;
  readonly decidedBy?: string;
}

/** Metadata of tool output held in the vault; the payload itself never travels with it. */
export interface HandleRecord {
  readonly id: string;
  readonly ownerPrincipalId: string;
  readonly producingCapability: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: EpochMillis;
  readonly expiresAt: EpochMillis;
  readonly sizeBytes: number;
}

/** Where a session is in the MCP lifecycle, as the edge observed it (I8). */
export type SessionState = 'active' | 'none' | 'unknown' | 'expired' | 'ended';

/** Protocol facts of the request's session; the engine turns them into I8/I4 decisions. */
export interface SessionFacts {
  readonly state: SessionState;
  readonly id?: string;
  /** True once initialize and notifications/initialized completed. */
  readonly initialized: boolean;
  readonly ownerPrincipalId?: string;
  /** The version negotiated at initialize. */
  readonly negotiatedVersion?: string;
  /** The version the request carried (MCP-Protocol-Version header, or _meta in later revisions). */
  readonly requestVersion?: string;
}

/** allow or deny; never a bare boolean so that callers switch on it explicitly. */
export type Outcome = 'allow' | 'deny';

/** The family of endpoint a decision was made for; the audit groups by it. */
export type EndpointFamily =
  'tools/call' | 'tools/list' | 'handle/peek' | 'handle/pipe' | 'protocol' | 'grant' | 'approval';

/** The grant nearest to matching when none did, and the first thing about it that failed. */
export interface NearestGrant {
  readonly grantId: string;
  readonly mismatch: string;
}

/** The engine's answer: outcome, one reason code, the grant behind it, and why. */
export interface Decision {
  readonly id: string;
  readonly outcome: Outcome;
  readonly reason: ReasonCode;
  /** The invariant whose check decided a denial; absent on allow. */
  readonly invariant?: InvariantId;
  /** The named check that decided, e.g. `scoped_grant`; `all` on allow. */
  readonly check: string;
  readonly matchedGrantId?: string;
  readonly nearestGrant?: NearestGrant;
  /** On PIPE_TARGET_DENIED: the reason the target call itself was denied. */
  readonly targetReason?: ReasonCode;
  /** On allow with approval: the approval the caller must consume (single use). */
  readonly approvalToConsume?: string;
  readonly explanation: string;
  readonly decidedAt: EpochMillis;
  /** Ablation switches active when the decision was made (benchmark only; empty in production). */
  readonly ablations: readonly string[];
}

/** One append-only audit record (I7); the hash chains it to the previous entry. */
export interface AuditEntry {
  readonly id: string;
  readonly time: EpochMillis;
  readonly decisionId: string;
  readonly principalId?: string;
  readonly endpointFamily: EndpointFamily;
  readonly capabilityId?: string;
  readonly resourceRaw?: string;
  readonly resourceCanonical?: string;
  readonly outcome: Outcome;
  readonly reason: ReasonCode;
  readonly invariant?: InvariantId;
  readonly check?: string;
  readonly matchedGrantId?: string;
  readonly missingGrant?: string;
  readonly rule?: string;
  readonly approvalId?: string;
  readonly handleIds: readonly string[];
  readonly traceId?: string;
  readonly seq?: number;
  readonly prevHash?: string;
  readonly hash?: string;
}
