import type {
  Approval,
  ArgumentResource,
  AuditEntry,
  Capability,
  Decision,
  HandleRecord,
  ResourceKind,
} from '@hcp/core';
import type { AuditPublisher } from '@hcp/platform';
import type { DecideRequestFacts } from '@hcp/proto';
import type { UpstreamCallResult } from '../providers/upstream-client';

/*
 * The call path talks to the rest of HCP only through these ports, so CallService is transport-free:
 * the gRPC/MCP adapters implement them in the wiring, and unit tests implement them with fakes.
 * Every port signals an expected refusal by throwing HcpError with a reason code; anything else
 * it throws is treated as the dependency being unavailable.
 */

/** The pipe decision's input: the source handle and the target call, decided together (I6). */
export interface DecidePipeFacts {
  readonly sourceHandleId: string;
  /** The source's metadata as the vault reported it to its owner; absent = unknown or not owned. */
  readonly source?: HandleRecord;
  readonly target: DecideRequestFacts;
}

/** The decision point (policy-decision over gRPC); it records the audit entry of each decision itself. */
export interface DecisionPort {
  decide(facts: DecideRequestFacts): Promise<Decision>;
  decidePipe(facts: DecidePipeFacts): Promise<Decision>;
}

/** What the vault stores for one tool output. */
export interface VaultPutInput {
  readonly ownerPrincipalId: string;
  readonly producingCapability: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly payload: Uint8Array;
}

/** A bounded, redacted preview of a handle, as the vault renders it. */
export interface VaultPreview {
  readonly handle: HandleRecord;
  readonly preview: string;
  readonly truncated: boolean;
}

/** The payload a pipe moves, released by the vault only against an allow decision id. */
export interface VaultResolved {
  readonly handle: HandleRecord;
  readonly payload: Uint8Array;
}

/** The handle vault; it checks ownership again on every read and audits peeks and resolves itself. */
export interface VaultPort {
  put(input: VaultPutInput): Promise<HandleRecord>;
  peek(input: {
    readonly principalId: string;
    readonly handleId: string;
    readonly maxBytes: number;
  }): Promise<VaultPreview>;
  /**
   * The handle's metadata for its owner, or undefined when it is unknown or owned by someone else
   * (the decision point then answers HANDLE_NOT_OWNED); the vault's DescribeHandle.
   */
  describe(input: {
    readonly principalId: string;
    readonly handleId: string;
  }): Promise<HandleRecord | undefined>;
  resolveForPipe(input: {
    readonly principalId: string;
    readonly handleId: string;
    readonly decisionId: string;
  }): Promise<VaultResolved>;
}

/** The provider side: one MCP tools/call on the provider that owns the capability. */
export interface UpstreamPort {
  callTool(capabilityId: string, args: Record<string, unknown>): Promise<UpstreamCallResult>;
}

/** Resource canonicalisation (I3), configured per provider (filesystem roots, URL rules). */
export interface CanonicalizerPort {
  /**
   * The canonicaliser's verdict on every resource the call names: one per declared resource
   * argument present in `args`, one per element of an array argument (`many`), in declaration
   * order; empty when the capability declares none. An absent argument has no fact (the decision
   * point answers INPUT_INVALID); a malformed array is one `invalid` fact; a canonicaliser that
   * throws is an `unresolvable` fact for that value. Refusals are returned as facts (never thrown)
   * so the decision and its audit entry record them.
   */
  canonicalize(
    capability: Capability,
    args: Readonly<Record<string, unknown>>,
  ): Promise<ArgumentResource[]>;
  /** Longest raw value (characters) the capability's provider's canonicaliser of `kind` accepts. */
  maxRawLength(capability: Capability, kind: ResourceKind): number;
}

/** A manifest entry plus the edge-side settings the call path needs for it. */
export interface CallableCapability {
  /** The manifest entry: pinned definition digest, resource arguments, approval flag. */
  readonly capability: Capability;
  /** True when the operator allows an inline (redacted, bounded) preview of this tool's output. */
  readonly inlinePreview: boolean;
  /** Bound of that preview; the service default applies when absent. */
  readonly previewMaxBytes?: number;
  /** Data classification of the output (from the manifest or provider config), as a vault label. */
  readonly sensitivity?: string;
  /** Classification by the canonical path the output was read from (wins over `sensitivity`). */
  readonly sensitivePaths?: readonly { readonly prefix: string; readonly sensitivity: string }[];
}

/** The capability manifest as held in grant-store (cached by the wiring). */
export interface ManifestPort {
  capability(capabilityId: string): Promise<CallableCapability | undefined>;
}

/** What the edge asks an approver to approve: one exact call, bound by digest (I2). */
export interface ApprovalRequestInput {
  readonly principalId: string;
  readonly capabilityId: string;
  /** `approvalBindingDigest` of (principal, capability, every canonical resource, arguments digest). */
  readonly bindingDigest: string;
  /** The call in human terms for the approver; never argument values (they may hold secrets). */
  readonly summary: string;
  /** How long the approval may be used; grant-store's default (and cap) applies when absent. */
  readonly ttlMs?: number;
}

/**
 * The grant-store approval API. The edge only files requests and consumes approved ones: an
 * approver principal decides through grant-store itself, never through the agent's connection,
 * so nothing an agent sends (an elicitation accept, a `confirm: true` argument) is an approval.
 */
export interface ApprovalPort {
  /** Files a pending approval for one exact call; the agent gets its id to retry with. */
  request(input: ApprovalRequestInput): Promise<Approval>;
  /** Marks an approval used so it cannot be replayed (I2, single use); grant-store re-checks the binding. */
  consume(input: {
    readonly approvalId: string;
    readonly principalId: string;
    readonly decisionId: string;
    /** Binding digest of the call being executed, computed exactly as for `request`. */
    readonly bindingDigest: string;
  }): Promise<void>;
}

/**
 * Checks tool arguments against the capability's pinned input schema (I1: the schema that was
 * reviewed, not whatever the provider lists now). Synchronous and side-effect free.
 */
export interface ArgumentValidatorPort {
  /**
   * undefined = valid (or no pinned schema to check against); otherwise a message naming the field.
   * `pinnedDigest` is the manifest's pin for the capability, as the call path just read it.
   */
  validate(
    capabilityId: string,
    args: Readonly<Record<string, unknown>>,
    pinnedDigest?: string,
  ): string | undefined;
}

/** The edge's audit publisher (I7); `record` throws HcpError('AUDIT_UNAVAILABLE') when full. */
export type AuditPort = Pick<AuditPublisher, 'record' | 'available'>;

/** Waiting for entries to be durable (the audit publisher's recordDurable and flush, bounded). */
export interface AuditDurabilityPort {
  /**
   * Records the entry and resolves once that entry is durable; rejects past its bound (the entry
   * stays buffered and is delivered later). Throws synchronously when it cannot accept the entry.
   */
  recordDurable(entry: AuditEntry): Promise<void>;
  /** Resolves once every entry recorded so far is durable; rejects past its bound. */
  flush(): Promise<void>;
}

/**
 * The definitions the edge lists now (I1): the digest of a tool as its provider's current, fresh
 * listing has it; undefined while that provider's listing is stale (a change announced and not
 * yet re-listed) or when the tool is not listed.
 */
export interface DefinitionsPort {
  current(capabilityId: string): string | undefined;
}

/** Everything CallService depends on, injected as one object. */
export interface CallPorts {
  readonly decision: DecisionPort;
  readonly vault: VaultPort;
  readonly upstream: UpstreamPort;
  readonly canonicalizer: CanonicalizerPort;
  readonly manifest: ManifestPort;
  readonly approvals: ApprovalPort;
  readonly audit: AuditPort;
  /** Argument validation against pinned input schemas; absent = arguments are only bounded. */
  readonly validator?: ArgumentValidatorPort;
  /**
   * The listed definitions, checked again right before the provider is called: a change the edge
   * heard of after the decision refuses the call (TOOL_DEFINITION_CHANGED). Absent: not checked.
   */
  readonly definitions?: DefinitionsPort;
  /** Clock for audit times; tests pin it. */
  readonly now?: () => number;
  /**
   * How the intent is made durable (ADR 0005 §1); when given, no approval is consumed and no
   * provider runs before the call's intent entry is acknowledged by the audit stream.
   */
  readonly auditDurability?: AuditDurabilityPort;
}
