import {
  HcpError,
  approvalBindingDigest,
  argumentsDigest,
  boundResourcesOf,
  canonicalJson,
  denial,
  invariantOf,
  resourceLabel,
  newId,
  type ArgumentResource,
  type AuditEntry,
  type Capability,
  type Decision,
  type DenialReason,
  type DenialSpec,
  type EndpointFamily,
  type HandleRecord,
  type InvariantId,
  type Principal,
  type ReasonCode,
  type ResourceArgument,
  type SessionFacts,
} from '@hcp/core';
import { createLogger } from '@hcp/platform';
import { recordDecision, refuse, type RefusalSubject } from '@hcp/policy';
import type { DecideRequestFacts } from '@hcp/proto';
import type { UpstreamCallResult } from '../providers/upstream-client';
import type { CallableCapability, CallPorts, VaultResolved } from './ports';

/** Bounds on tool arguments, checked before anything else sees them. */
export const CALL_LIMITS = {
  /** Largest argument object, as UTF-8 JSON. */
  maxArgumentBytes: 256 * 1024,
  /** Deepest nesting of objects/arrays in the arguments. */
  maxArgumentDepth: 32,
  /** Default and largest preview a peek or an inline preview returns. */
  defaultPreviewBytes: 1024,
  maxPreviewBytes: 64 * 1024,
} as const;

/** A call that did not produce a handle: one reason code, and the decision behind it when there was one. */
export interface CallRefusal {
  readonly kind: 'refused';
  readonly reason: ReasonCode;
  readonly message: string;
  /** The decision that refused (or, for a failure after an allow, the allow it failed under). */
  readonly decisionId?: string;
  readonly invariant?: InvariantId;
  /** On PIPE_TARGET_DENIED: why the target call itself was denied. */
  readonly targetReason?: ReasonCode;
  /**
   * On APPROVAL_REQUIRED for a call that presented no approval: the pending approval filed for
   * exactly this call. An approver decides it in grant-store; the agent then retries the identical
   * call with this id as its approvalId.
   */
  readonly approvalRequestId?: string;
  /** When that pending approval stops being usable (epoch millis). */
  readonly approvalExpiresAt?: number;
}

/** A call whose output is now in the vault; the agent sees a handle, and a preview only if allowed. */
export interface CallSuccess {
  readonly kind: 'handle';
  readonly handleId: string;
  readonly decisionId: string;
  readonly sizeBytes: number;
  /** True when the provider answered with a tool error (isError); the error text is in the handle. */
  readonly toolError: boolean;
  readonly preview?: { readonly text: string; readonly truncated: boolean };
}

/** What callTool and pipe answer. */
export type CallOutcome = CallSuccess | CallRefusal;

/** What hcp_peek answers. */
export type PeekOutcome =
  | {
      readonly kind: 'preview';
      readonly handle: HandleRecord;
      readonly text: string;
      readonly truncated: boolean;
    }
  | CallRefusal;

/** One tools/call as the protocol layer hands it over (principal and session already established). */
export interface CallToolInput {
  readonly principal: Principal;
  readonly session: SessionFacts;
  readonly capabilityId: string;
  readonly args: unknown;
  /** Digest of the definition the provider currently advertises (I1); the PDP compares it to the pin. */
  readonly observedDigest?: string;
  readonly approvalId?: string;
  readonly traceId?: string;
}

/** One hcp_peek. */
export interface PeekInput {
  readonly principal: Principal;
  readonly session: SessionFacts;
  readonly handleId: string;
  readonly maxBytes?: number;
  readonly traceId?: string;
}

/** One hcp_pipe: the source handle's payload becomes `args[argumentName]` of the target call. */
export interface PipeInput {
  readonly principal: Principal;
  readonly session: SessionFacts;
  readonly sourceHandleId: string;
  readonly targetCapabilityId: string;
  readonly argumentName: string;
  readonly args: unknown;
  readonly observedDigest?: string;
  readonly approvalId?: string;
  readonly traceId?: string;
}

/** Label recording which handle a piped output was derived from. */
const PIPED_FROM_LABEL = 'pipedFrom';

/** Longest canonical resource quoted in an approval summary (the digest binds the full one). */
const SUMMARY_RESOURCE_CHARS = 256;

/**
 * A dependency that failed, in the call path's terms: the reason it named (or the call site's
 * fallback), and the decision id when the service that refused has recorded the refusal itself.
 */
interface PortFailure {
  readonly kind: 'failed';
  readonly reason: DenialReason;
  readonly message: string;
  readonly decisionId?: string;
}

/** An allowed call on its way to the provider: everything its intent and outcome entries record. */
interface AllowedCall {
  readonly input: CallToolInput | PipeInput;
  readonly facts: DecideRequestFacts;
  readonly decision: Decision;
  readonly sourceHandleIds: readonly string[];
}

/** Who and what a refusal or invocation entry is about, less the caller (added by `subjectOf`). */
type EntrySubject = Omit<RefusalSubject, 'principal' | 'session' | 'traceId'>;

/**
 * The call path and the built-in hcp_peek / hcp_pipe, free of any transport: decide first, invoke
 * the provider only on allow and only once the invocation's intent is durable, keep the output in
 * the vault and hand out a handle. Every refusal it returns is made by the one refusal path
 * (`refuse`) and carries the decision id of its audit entry (I7).
 */
export class CallService {
  private readonly log = createLogger('CallService');
  private readonly now: () => number;

  constructor(private readonly ports: CallPorts) {
    this.now = ports.now ?? Date.now;
  }

  async callTool(input: CallToolInput): Promise<CallOutcome> {
    const family: EndpointFamily = 'tools/call';
    const args = boundedArguments(input.args);
    if (typeof args === 'string')
      return this.refuseLocally(input, family, input.capabilityId, args);

    const entry = await this.attempt(
      () => this.ports.manifest.capability(input.capabilityId),
      'POLICY_UNAVAILABLE',
    );
    if (isFailure(entry)) {
      return this.refuseFailure(input, entry, 'edge.manifest', {
        endpointFamily: family,
        capabilityId: input.capabilityId,
      });
    }
    // Unknown capability: nothing to validate against; the decision point answers CAPABILITY_UNKNOWN.
    const invalid = entry === undefined ? undefined : this.validate(entry, args);
    if (invalid !== undefined)
      return this.refuseLocally(input, family, input.capabilityId, invalid, 'input_schema');
    const facts = await this.callFacts(input, family, entry, args);

    const decision = await this.attempt(
      () => this.ports.decision.decide(facts),
      'POLICY_UNAVAILABLE',
    );
    // The decision point unreachable, late or failing: the edge decides the refusal itself, under
    // its own decision id, and records it, so this refusal is in the audit like any other.
    if (isFailure(decision))
      return this.refuseFailure(input, decision, 'edge.decide_transport', callSubject(facts));
    // The decision point has audited the decision (allow or deny); a deny needs nothing more.
    if (decision.outcome !== 'allow') return this.denied(input, facts, decision, entry);
    return this.invoke({ input, facts, decision, sourceHandleIds: [] }, entry, args, {});
  }

  async peek(input: PeekInput): Promise<PeekOutcome> {
    const maxBytes = input.maxBytes ?? CALL_LIMITS.defaultPreviewBytes;
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > CALL_LIMITS.maxPreviewBytes) {
      return this.refuseLocally(
        input,
        'handle/peek',
        undefined,
        `maxBytes: must be an integer from 1 to ${CALL_LIMITS.maxPreviewBytes}`,
      );
    }
    // Ownership (I4) is enforced, and the peek audited allow or deny, by the vault itself.
    const result = await this.attempt(
      () =>
        this.ports.vault.peek({
          principalId: input.principal.id,
          handleId: input.handleId,
          maxBytes,
        }),
      'VAULT_UNAVAILABLE',
    );
    if (isFailure(result)) {
      // The vault's own refusal names the decision id of its entry; only a refusal without one
      // (the vault unreachable) is recorded here.
      return this.refuseFailure(input, result, 'vault.peek', {
        endpointFamily: 'handle/peek',
        handleIds: [input.handleId],
      });
    }
    return {
      kind: 'preview',
      handle: result.handle,
      text: result.preview,
      truncated: result.truncated,
    };
  }

  async pipe(input: PipeInput): Promise<CallOutcome> {
    const family: EndpointFamily = 'handle/pipe';
    const target = input.targetCapabilityId;
    const args = boundedArguments(input.args);
    if (typeof args === 'string') return this.refuseLocally(input, family, target, args);
    const name = input.argumentName;
    if (name === '' || name.length > 128 || Object.prototype.hasOwnProperty.call(args, name)) {
      return this.refuseLocally(
        input,
        family,
        target,
        'argumentName: must be a non-empty name (at most 128 characters) not already in args',
      );
    }

    const entry = await this.attempt(
      () => this.ports.manifest.capability(target),
      'POLICY_UNAVAILABLE',
    );
    if (isFailure(entry)) {
      return this.refuseFailure(input, entry, 'edge.manifest', {
        endpointFamily: family,
        capabilityId: target,
        handleIds: [input.sourceHandleId],
      });
    }
    const resourceArg = entry?.capability.resourceArguments.find((a) => a.name === name);
    if (entry !== undefined && resourceArg !== undefined) {
      if (resourceArg.many === true) {
        return this.refuseLocally(
          input,
          family,
          target,
          `argumentName: ${name} is an array of resources of ${target}; a handle can fill only a single resource argument`,
        );
      }
      return this.pipeResource(input, entry, resourceArg, args);
    }
    // The decision binds to the handle reference, not to the (still unread) payload.
    const decided = { ...args, [name]: { hcpHandle: input.sourceHandleId } };
    const facts = await this.callFacts(input, family, entry, args, decided);
    const subject = { ...callSubject(facts), handleIds: [input.sourceHandleId] };

    const source = await this.describeSource(input);
    if (isFailure(source)) return this.refuseFailure(input, source, 'vault.describe', subject);

    const decision = await this.decidePipe(input, entry, source, facts, subject);
    if (decision.kind === 'refused') return decision;
    const allowed: AllowedCall = {
      input,
      facts,
      decision: decision.decision,
      sourceHandleIds: [input.sourceHandleId],
    };

    const resolved = await this.resolve(input, decision.decision.id);
    if (isFailure(resolved)) return this.endRefused(allowed, resolved);

    const payload = Buffer.from(resolved.payload).toString('utf8');
    return this.invokePiped(allowed, entry, { ...args, [name]: payload }, resolved);
  }

  /**
   * A pipe into a resource argument of the target (I3 + I6): the handle's content becomes the
   * target's resource, so it is read, canonicalised and decided like any resource before the
   * provider sees it. In order:
   *  1. the source is described for its owner (before any read); unknown or foreign, the decision
   *     point answers HANDLE_NOT_OWNED on a pipe without source metadata;
   *  2. a source larger than the argument's bound is refused (INPUT_INVALID) unread;
   *  3. the content is read under an edge allow of its own (check `pipe.resource_read`, recorded
   *     first, so the vault's read entry links to it), and must be UTF-8 text without control
   *     characters (one trailing newline is dropped);
   *  4. the call is canonicalised and decided with the content in that argument: the arguments
   *     digest, the argument constraints and the resource facts all see the content, and the
   *     decision point checks the source's labels against the target's grants (secret data needs
   *     flow:secret on every grant that matched);
   *  5. after an allow the content is read again under the allow's decision id, and must be what
   *     was decided (the vault's handles are immutable; anything else is refused INPUT_INVALID);
   *     then the pinned schema is checked and the target invoked with the content.
   * The agent sees none of the content: refusals name the handle and the bound, never the value.
   */
  private async pipeResource(
    input: PipeInput,
    entry: CallableCapability,
    argument: ResourceArgument,
    args: Record<string, unknown>,
  ): Promise<CallOutcome> {
    const family: EndpointFamily = 'handle/pipe';
    const target = input.targetCapabilityId;
    const name = argument.name;
    const handleIds = [input.sourceHandleId];
    const unread = { endpointFamily: family, capabilityId: target, handleIds };

    const source = await this.describeSource(input);
    if (isFailure(source)) return this.refuseFailure(input, source, 'vault.describe', unread);
    if (source === undefined) {
      // Unknown or foreign: nothing is read; the decision point refuses (HANDLE_NOT_OWNED) and audits.
      const decided = { ...args, [name]: { hcpHandle: input.sourceHandleId } };
      const facts = await this.callFacts(input, family, entry, args, decided);
      const decision = await this.decidePipe(input, entry, undefined, facts, {
        ...callSubject(facts),
        handleIds,
      });
      if (decision.kind === 'refused') return decision;
      // The decision point allowed a pipe from a handle the vault does not know for its owner
      // (an ablated ownership check): there is no content to canonicalise, so fail closed.
      return this.endRefused(
        { input, facts, decision: decision.decision, sourceHandleIds: handleIds },
        {
          kind: 'failed',
          reason: 'HANDLE_NOT_OWNED',
          message: `handle ${input.sourceHandleId} is not owned by ${input.principal.id}`,
        },
      );
    }

    const maxBytes = this.ports.canonicalizer.maxRawLength(
      entry.capability,
      argument.canonicalizer,
    );
    if (source.sizeBytes > maxBytes + 1) {
      return this.refuseLocally(
        input,
        family,
        target,
        `sourceHandleId: handle ${input.sourceHandleId} holds ${source.sizeBytes} bytes; a piped ${argument.canonicalizer} argument (${name}) holds at most ${maxBytes} bytes (and one trailing newline)`,
      );
    }

    // The vault releases a payload only under a decision id: the edge allows this one read (to
    // canonicalise the content) under an id of its own, on record before the read.
    const read: Decision = {
      id: newId('dec'),
      outcome: 'allow',
      reason: 'ALLOWED',
      check: PIPE_RESOURCE_READ_CHECK,
      explanation: `allow ${PIPE_RESOURCE_READ_CHECK}: handle ${input.sourceHandleId} is read to canonicalise it as ${name} of ${target}`,
      decidedAt: this.now(),
      ablations: [],
    };
    try {
      recordDecision(this.ports.audit, read, this.subjectOf(input, unread));
    } catch (err) {
      return this.refuse(
        input,
        {
          id: read.id,
          reason: 'AUDIT_UNAVAILABLE',
          check: PIPE_RESOURCE_READ_CHECK,
          explanation: `the read of handle ${input.sourceHandleId} could not be recorded (${err instanceof Error ? err.message : 'unknown'}); nothing was read`,
        },
        unread,
      );
    }
    // A failed read is refused under the read's id (the vault's own refusal keeps the vault's).
    const refuseRead = (failure: PortFailure): CallRefusal =>
      failure.decisionId !== undefined
        ? recordedRefusal(failure, failure.decisionId)
        : this.refuse(
            input,
            {
              id: read.id,
              reason: failure.reason,
              check: PIPE_RESOURCE_READ_CHECK,
              explanation: failure.message,
            },
            unread,
          );
    const first = await this.resolve(input, read.id);
    if (isFailure(first)) return refuseRead(first);
    const content = resourceText(first.payload, maxBytes);
    if (content.kind === 'invalid') {
      return refuseRead({
        kind: 'failed',
        reason: 'INPUT_INVALID',
        message: `sourceHandleId: handle ${input.sourceHandleId} ${content.why}, so it cannot be the ${argument.canonicalizer} argument ${name}`,
      });
    }

    // From here the content is a decided argument like any other.
    const piped = { ...args, [name]: content.text };
    const facts = await this.callFacts(input, family, entry, piped);
    const decision = await this.decidePipe(input, entry, source, facts, {
      ...callSubject(facts),
      handleIds,
    });
    // The decision's explanation may quote the resource (a nearest grant's mismatch, a
    // canonicaliser's detail), which is the handle's content: then the agent gets the reason and
    // the decision id only; the audit entry under that id records the resource.
    if (decision.kind === 'refused') {
      const quoted = [content.text, ...canonicalsOf(facts.call.resources, name)];
      if (!quoted.some((q) => q !== '' && decision.message.includes(q))) return decision;
      const why = decision.targetReason === undefined ? '' : ` (target: ${decision.targetReason})`;
      return {
        ...decision,
        message: `${decision.reason}${why}: the pipe of handle ${input.sourceHandleId} into ${name} of ${target} was refused; the resource it names is not repeated here (see the audit entry of this decision)`,
      };
    }
    const allowed: AllowedCall = {
      input,
      facts,
      decision: decision.decision,
      sourceHandleIds: handleIds,
    };

    const resolved = await this.resolve(input, decision.decision.id);
    if (isFailure(resolved)) return this.endRefused(allowed, resolved);
    if (
      resolved.handle.id !== first.handle.id ||
      !Buffer.from(resolved.payload).equals(Buffer.from(first.payload))
    ) {
      return this.endRefused(allowed, {
        kind: 'failed',
        reason: 'INPUT_INVALID',
        message: `sourceHandleId: handle ${input.sourceHandleId} changed after its content was decided as ${name}; nothing was invoked`,
      });
    }
    return this.invokePiped(allowed, entry, piped, resolved);
  }

  /** DecidePipe, with a decision-point failure refused and recorded by the edge. */
  private async decidePipe(
    input: PipeInput,
    entry: CallableCapability | undefined,
    source: HandleRecord | undefined,
    facts: DecideRequestFacts,
    subject: EntrySubject,
  ): Promise<{ readonly kind: 'decided'; readonly decision: Decision } | CallRefusal> {
    const decision = await this.attempt(
      () =>
        this.ports.decision.decidePipe({
          sourceHandleId: input.sourceHandleId,
          ...(source === undefined ? {} : { source }),
          target: facts,
        }),
      'POLICY_UNAVAILABLE',
    );
    if (isFailure(decision))
      return this.refuseFailure(input, decision, 'edge.decide_transport', subject);
    if (decision.outcome !== 'allow') return this.denied(input, facts, decision, entry);
    return { kind: 'decided', decision };
  }

  /** The source's metadata for its owner (undefined: unknown or foreign); nothing is read. */
  private describeSource(input: PipeInput): Promise<HandleRecord | undefined | PortFailure> {
    return this.attempt(
      () =>
        this.ports.vault.describe({
          principalId: input.principal.id,
          handleId: input.sourceHandleId,
        }),
      'VAULT_UNAVAILABLE',
    );
  }

  /** The source's payload, released by the vault (owner-checked and audited there) under `decisionId`. */
  private resolve(input: PipeInput, decisionId: string): Promise<VaultResolved | PortFailure> {
    return this.attempt(
      () =>
        this.ports.vault.resolveForPipe({
          principalId: input.principal.id,
          handleId: input.sourceHandleId,
          decisionId,
        }),
      'VAULT_UNAVAILABLE',
    );
  }

  /** An allowed pipe with its payload in place: the pinned schema, then the invocation. */
  private invokePiped(
    allowed: AllowedCall,
    entry: CallableCapability | undefined,
    piped: Record<string, unknown>,
    resolved: VaultResolved,
  ): Promise<CallOutcome> | CallRefusal {
    // The payload exists only now, so the pinned schema is checked against the real value here,
    // after the allow but before anything is consumed or invoked.
    const invalid = entry === undefined ? undefined : this.validate(entry, piped);
    if (invalid !== undefined)
      return this.endRefused(allowed, {
        kind: 'failed',
        reason: 'INPUT_INVALID',
        message: invalid,
      });
    // The output is derived from the source data: it keeps the source's labels (a secret stays a
    // secret after a pipe) and the source's sensitivity wins unless the target's is higher.
    const inherited: Record<string, string> = {
      ...resolved.handle.labels,
      [PIPED_FROM_LABEL]: resolved.handle.id,
    };
    return this.invoke(
      { ...allowed, sourceHandleIds: [resolved.handle.id] },
      entry,
      piped,
      inherited,
    );
  }

  /** The Decide facts of a call; `digestOf` is what the arguments digest covers (pipes differ). */
  private async callFacts(
    input: CallToolInput | PipeInput,
    family: EndpointFamily,
    entry: CallableCapability | undefined,
    args: Record<string, unknown>,
    digestOf: Record<string, unknown> = args,
  ): Promise<DecideRequestFacts> {
    const capabilityId = 'capabilityId' in input ? input.capabilityId : input.targetCapabilityId;
    // Unknown capability: no resource facts; the decision point answers CAPABILITY_UNKNOWN and audits it.
    const resources = entry === undefined ? [] : await this.canonicalize(entry.capability, args);
    return {
      principal: input.principal,
      session: input.session,
      call: {
        capabilityId,
        argumentsDigest: argumentsDigest(digestOf),
        // The (already bounded) arguments, so grants can constrain them; for a pipe, the handle
        // reference the digest covers, never the payload (unless the payload is the resource,
        // which is then decided as an argument like any other).
        arguments: digestOf,
        ...(input.observedDigest === undefined
          ? {}
          : { observedDefinitionDigest: input.observedDigest }),
        ...(resources.length === 0 ? {} : { resources }),
        ...(input.approvalId === undefined ? {} : { approvalId: input.approvalId }),
      },
      endpointFamily: family,
      // When the audit buffer is full the decision point denies with AUDIT_UNAVAILABLE (I7).
      auditAvailable: this.ports.audit.available(),
      ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
    };
  }

  /**
   * Every resource the call names, canonicalised. A canonicaliser port that throws is carried to
   * the decision as an unresolvable resource for each argument present (fail closed).
   */
  private async canonicalize(
    capability: Capability,
    args: Readonly<Record<string, unknown>>,
  ): Promise<readonly ArgumentResource[]> {
    try {
      return await this.ports.canonicalizer.canonicalize(capability, args);
    } catch (err) {
      return capability.resourceArguments
        .filter((arg) => Object.prototype.hasOwnProperty.call(args, arg.name))
        .map((arg) => {
          const raw = args[arg.name];
          return {
            argument: arg.name,
            index: 0,
            facts: {
              status: 'unresolvable',
              kind: arg.canonicalizer,
              raw: typeof raw === 'string' ? raw.slice(0, 256) : '',
              rule: 'canonicalizer.error',
              detail: err instanceof Error ? err.message : 'the canonicaliser failed',
            },
          };
        });
    }
  }

  /**
   * Everything after an allow: record the intent (durable before any effect), consume the
   * approval, invoke, store, record the outcome, answer.
   */
  private async invoke(
    allowed: AllowedCall,
    entry: CallableCapability | undefined,
    args: Record<string, unknown>,
    inheritedLabels: Readonly<Record<string, string>>,
  ): Promise<CallOutcome> {
    const { input, facts, decision } = allowed;
    const capabilityId = facts.call.capabilityId;
    if (entry === undefined) {
      // The decision point allowed a capability the edge has no manifest entry for: fail closed.
      return this.endRefused(allowed, {
        kind: 'failed',
        reason: 'CAPABILITY_UNKNOWN',
        message: `${capabilityId} has no manifest entry at the edge`,
      });
    }

    // Intent before effect: nothing irreversible (an approval consumed, a provider called) happens
    // before the audit holds the invocation. This is the call's one awaited publish.
    const unrecorded = await this.recordIntent(allowed);
    if (unrecorded !== undefined) return unrecorded;

    if (decision.approvalToConsume !== undefined) {
      const approvalId = decision.approvalToConsume;
      const consumed = await this.attempt(
        () =>
          this.ports.approvals.consume({
            approvalId,
            principalId: input.principal.id,
            decisionId: decision.id,
            bindingDigest: bindingDigestOf(facts),
          }),
        'APPROVAL_CONSUMED',
      );
      if (isFailure(consumed)) return this.endRefused(allowed, consumed);
    }

    // The decision was made on the definition listed when the call arrived; the intent publish
    // and the approval took time, and a change announced meanwhile (list_changed) must not run.
    // Checked last, right before the provider is called, so the window left is the network's.
    const definitions = this.ports.definitions;
    if (definitions !== undefined) {
      const current = definitions.current(capabilityId);
      if (current !== facts.call.observedDefinitionDigest) {
        return this.endRefused(
          allowed,
          {
            kind: 'failed',
            reason: 'TOOL_DEFINITION_CHANGED',
            message: `${capabilityId}: the tool's definition changed (or is being re-listed) after the decision; the provider was not called`,
          },
          undefined,
          DEFINITION_CHECK,
        );
      }
    }

    let output: UpstreamCallResult;
    try {
      output = await this.ports.upstream.callTool(capabilityId, args);
    } catch (err) {
      // The upstream port names the reason (INPUT_INVALID when the provider rejects the arguments,
      // PAYLOAD_TOO_LARGE, ...); anything untyped is the provider failing. POLICY_UNAVAILABLE
      // would wrongly blame the decision point.
      const reason = err instanceof HcpError ? denialReason(err.reason) : 'PROVIDER_UNAVAILABLE';
      // A request the provider made for this call refused on its way out (the egress proxy
      // refusing a redirect hop to a private address) is a resource refusal (I3): say which rule.
      const rule = err instanceof HcpError ? err.details['rule'] : undefined;
      const egress = reason === 'RESOURCE_DENIED' && typeof rule === 'string';
      return this.endRefused(
        allowed,
        {
          kind: 'failed',
          reason,
          message: egress
            ? `${capabilityId}: a request the provider made was refused (${rule})`
            : `${capabilityId}: the provider call failed`,
        },
        egress ? rule : undefined,
      );
    }

    const encoded = encodeOutput(output);
    const stored = await this.attempt(
      () =>
        this.ports.vault.put({
          ownerPrincipalId: input.principal.id,
          producingCapability: capabilityId,
          labels: labelsOf(entry, encoded.encoding, inheritedLabels, facts.call.resources),
          payload: encoded.payload,
        }),
      'VAULT_UNAVAILABLE',
    );
    if (isFailure(stored)) return this.endRefused(allowed, stored);

    let preview: CallSuccess['preview'];
    if (entry.inlinePreview) {
      // Through the vault, so the preview is redacted and bounded exactly like hcp_peek.
      const peeked = await this.attempt(
        () =>
          this.ports.vault.peek({
            principalId: input.principal.id,
            handleId: stored.id,
            maxBytes: Math.min(
              entry.previewMaxBytes ?? CALL_LIMITS.defaultPreviewBytes,
              CALL_LIMITS.maxPreviewBytes,
            ),
          }),
        'VAULT_UNAVAILABLE',
      );
      // A failed preview is not a failed call: the handle is there, the agent can hcp_peek later.
      if (!isFailure(peeked)) preview = { text: peeked.preview, truncated: peeked.truncated };
    }

    this.recordSuccess(allowed, [...allowed.sourceHandleIds, stored.id]);
    return {
      kind: 'handle',
      handleId: stored.id,
      decisionId: decision.id,
      sizeBytes: stored.sizeBytes,
      toolError: output.isError,
      ...(preview === undefined ? {} : { preview }),
    };
  }

  /**
   * The intent entry (an allow, check `invocation.intent`, linked to the allow by its decision id)
   * recorded and, when the wiring asks for it, published. Answers the AUDIT_UNAVAILABLE refusal
   * when either fails: the provider then never runs, so an agent told "refused" was refused.
   */
  private async recordIntent(allowed: AllowedCall): Promise<CallRefusal | undefined> {
    const intent: Decision = {
      ...allowed.decision,
      check: INTENT_CHECK,
      decidedAt: this.now(),
    };
    const subject = this.subjectOf(allowed.input, allowedSubject(allowed));
    const refused = (err: unknown): PortFailure => ({
      kind: 'failed',
      reason: 'AUDIT_UNAVAILABLE',
      message: `the invocation's intent could not be recorded (${err instanceof Error ? err.message : 'unknown'}); the provider was not called`,
    });
    const durability = this.ports.auditDurability;
    let durable: Promise<void> | undefined;
    try {
      // With a durability port the intent goes through recordDurable, so the wait below is for
      // this entry alone, not for every entry the edge has accepted so far.
      const sink =
        durability === undefined
          ? this.ports.audit
          : { record: (entry: AuditEntry) => void (durable = durability.recordDurable(entry)) };
      recordDecision(sink, intent, subject);
    } catch (err) {
      // The intent is not in the log: the refusal is recorded now like any other.
      return this.endRefused(allowed, refused(err), undefined, INTENT_CHECK);
    }
    try {
      await durable;
      return undefined;
    } catch (err) {
      return this.refuseAfterIntent(allowed, refused(err));
    }
  }

  /**
   * The refusal of a call whose intent was recorded but not published in time. The intent will
   * still be published, and the refusal must come after it in the log, or a reader (and the fault
   * test) sees an allow with nothing after it. The publisher pipelines, so an intent stuck on a
   * dead connection can be stored after a refusal recorded later: the refusal entry is therefore
   * recorded only once the intent is published. The agent gets the refusal at once, under the
   * same decision id.
   */
  private refuseAfterIntent(allowed: AllowedCall, failure: PortFailure): CallRefusal {
    const { decision } = allowed;
    const refusal = denial({
      id: decision.id,
      reason: failure.reason,
      check: INTENT_CHECK,
      explanation: failure.message,
      decidedAt: this.now(),
      ...(decision.matchedGrantId === undefined ? {} : { matchedGrantId: decision.matchedGrantId }),
    });
    void this.recordOncePublished(refusal, this.subjectOf(allowed.input, allowedSubject(allowed)));
    return refusalOf(refusal);
  }

  private async recordOncePublished(refusal: Decision, subject: RefusalSubject): Promise<void> {
    const durability = this.ports.auditDurability;
    // Each attempt is bounded by the publish wait (2 s by default): about five minutes in all. A
    // publisher that stops taking entries (closed, or full) ends the wait; the record then says why.
    for (let i = 0; durability !== undefined && i < INTENT_PUBLISH_ATTEMPTS; i++) {
      if (!this.ports.audit.available()) break;
      try {
        await durability.flush();
        break;
      } catch {
        // Not published yet: wait another round.
      }
    }
    try {
      recordDecision(this.ports.audit, refusal, subject);
    } catch (err) {
      this.log.error(
        { decisionId: refusal.id, err: err instanceof Error ? err.message : err },
        'the refusal of an unpublished intent was not recorded',
      );
    }
  }

  /**
   * The outcome entry of a call that succeeded (an allow, check `invocation`, with the handles).
   * Recorded but not awaited: the intent is already durable, so the audit holds the invocation
   * whatever happens to this entry, and the agent is never told "refused" for a call whose
   * provider ran. Waiting for a second publish would double the audit's share of every call's
   * latency for no stronger guarantee; a lost outcome entry is logged.
   */
  private recordSuccess(allowed: AllowedCall, handleIds: readonly string[]): void {
    const outcome: Decision = {
      ...allowed.decision,
      check: OUTCOME_CHECK,
      decidedAt: this.now(),
    };
    try {
      recordDecision(
        this.ports.audit,
        outcome,
        this.subjectOf(allowed.input, { ...allowedSubject(allowed), handleIds }),
      );
    } catch (err) {
      this.log.error(
        { decisionId: allowed.decision.id, err: err instanceof Error ? err.message : err },
        'the outcome entry of an invoked call was not recorded; its intent entry stands',
      );
    }
  }

  /**
   * How an allowed call ended when it did not produce a handle: a refusal under the allow's
   * decision id with an outcome entry (check `invocation`, or the step that failed). A refusal the
   * failing service recorded itself keeps that service's decision id and is not recorded again.
   */
  private endRefused(
    allowed: AllowedCall,
    failure: PortFailure,
    rule?: string,
    check: string = OUTCOME_CHECK,
  ): CallRefusal {
    if (failure.decisionId !== undefined) return recordedRefusal(failure, failure.decisionId);
    const { decision } = allowed;
    return this.refuse(
      allowed.input,
      {
        id: decision.id,
        reason: failure.reason,
        check,
        explanation: failure.message,
        ...(decision.matchedGrantId === undefined
          ? {}
          : { matchedGrantId: decision.matchedGrantId }),
      },
      { ...allowedSubject(allowed), ...(rule === undefined ? {} : { rule }) },
    );
  }

  /**
   * A dependency failed before any decision was made: the edge refuses under a decision id of its
   * own and records it, unless the failing service already recorded the refusal (its decision id
   * came back with the error), which is passed on rather than recorded twice.
   */
  private refuseFailure(
    input: CallToolInput | PipeInput | PeekInput,
    failure: PortFailure,
    check: string,
    subject: EntrySubject,
  ): CallRefusal {
    if (failure.decisionId !== undefined) return recordedRefusal(failure, failure.decisionId);
    return this.refuse(
      input,
      { reason: failure.reason, check, explanation: failure.message },
      subject,
    );
  }

  /** A refusal the edge decides itself (malformed input): its own decision id and audit entry. */
  private refuseLocally(
    input: PeekInput | CallToolInput | PipeInput,
    family: EndpointFamily,
    capabilityId: string | undefined,
    message: string,
    check: 'input_bounds' | 'input_schema' = 'input_bounds',
  ): CallRefusal {
    return this.refuse(
      input,
      { reason: 'INPUT_INVALID', check, explanation: message },
      {
        endpointFamily: family,
        ...(capabilityId === undefined ? {} : { capabilityId }),
        handleIds: 'handleId' in input ? [input.handleId] : [],
      },
    );
  }

  /**
   * The edge's use of the one refusal path. A refusal whose entry the audit would not take is
   * answered AUDIT_UNAVAILABLE under the same id: the agent learns the audit is down, not a
   * reason nobody can look up.
   */
  private refuse(
    input: CallToolInput | PipeInput | PeekInput,
    spec: Omit<DenialSpec, 'decidedAt'>,
    subject: EntrySubject,
  ): CallRefusal {
    const made = refuse(
      this.ports.audit,
      { ...spec, decidedAt: this.now() },
      this.subjectOf(input, subject),
    );
    if (made.audited) return refusalOf(made.decision);
    this.log.error(
      { decisionId: made.decision.id, reason: made.decision.reason, err: made.auditError?.message },
      'the audit refused a refusal entry',
    );
    return {
      kind: 'refused',
      reason: 'AUDIT_UNAVAILABLE',
      message:
        made.auditError instanceof HcpError
          ? made.auditError.message
          : 'the audit publisher refused the entry',
      decisionId: made.decision.id,
      invariant: 'I7',
    };
  }

  private subjectOf(
    input: CallToolInput | PipeInput | PeekInput,
    subject: EntrySubject,
  ): RefusalSubject {
    return {
      ...subject,
      principal: input.principal,
      session: input.session,
      ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
    };
  }

  /** The validator's verdict; a validator that throws refuses (fail closed), naming no field. */
  private validate(
    entry: CallableCapability,
    args: Readonly<Record<string, unknown>>,
  ): string | undefined {
    const validator = this.ports.validator;
    if (validator === undefined) return undefined;
    const { id, definitionDigest } = entry.capability;
    try {
      return validator.validate(id, args, definitionDigest);
    } catch {
      return `arguments: could not be checked against the pinned input schema of ${id}`;
    }
  }

  /**
   * The refusal of a deny. An APPROVAL_REQUIRED for a call that presented no approval also files a
   * pending approval bound to exactly this call, so an approver can act on it; the agent can never
   * approve it itself. Filing is best effort: when grant-store refuses, the deny (recorded by the
   * decision point under its id) stands without an approval id.
   */
  private async denied(
    input: CallToolInput | PipeInput,
    facts: DecideRequestFacts,
    decision: Decision,
    entry: CallableCapability | undefined,
  ): Promise<CallRefusal> {
    const refusal = refusalOf(decision);
    const needsApproval =
      decision.reason === 'APPROVAL_REQUIRED' || decision.targetReason === 'APPROVAL_REQUIRED';
    if (!needsApproval || input.approvalId !== undefined) return refusal;
    const call = facts.call;
    const resources = resourcesSummary(entry?.capability, call.resources);
    const summary =
      `${input.principal.id} asks to call ${call.capabilityId}` +
      (resources === '' ? '' : ` on ${resources}`) +
      (facts.endpointFamily === 'handle/pipe' ? ` with data piped from a handle` : '') +
      ` (arguments ${call.argumentsDigest})`;
    const approval = await this.attempt(
      () =>
        this.ports.approvals.request({
          principalId: input.principal.id,
          capabilityId: call.capabilityId,
          bindingDigest: bindingDigestOf(facts),
          summary,
        }),
      'POLICY_UNAVAILABLE',
    );
    if (isFailure(approval)) {
      this.log.warn(
        { decisionId: decision.id, reason: approval.reason },
        'could not file the approval request; the deny stands without one',
      );
      return refusal;
    }
    return { ...refusal, approvalRequestId: approval.id, approvalExpiresAt: approval.expiresAt };
  }

  /**
   * Runs a port call; an HcpError becomes a failure with its reason (and the decision id of the
   * refusal's entry when the service recorded one), anything else `fallback`.
   */
  private async attempt<T>(
    run: () => Promise<T>,
    fallback: DenialReason,
  ): Promise<T | PortFailure> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof HcpError))
        return { kind: 'failed', reason: fallback, message: `dependency failed (${fallback})` };
      const decisionId = err.details['decisionId'];
      return {
        kind: 'failed',
        reason: err.reason === 'ALLOWED' ? fallback : err.reason,
        message: err.message,
        ...(typeof decisionId === 'string' && decisionId !== '' ? { decisionId } : {}),
      };
    }
  }
}

/** Check of an invocation's intent entry (written before the provider runs). */
export const INTENT_CHECK = 'invocation.intent';
/** Check of an invocation's outcome entry (how the call ended). */
export const OUTCOME_CHECK = 'invocation';
/** How many publish waits the refusal of an unpublished intent waits through before recording anyway. */
const INTENT_PUBLISH_ATTEMPTS = 150;

function isFailure(value: unknown): value is PortFailure {
  return (
    typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'failed'
  );
}

/** A reason an error carried, as a denial reason (an error never means ALLOWED). */
function denialReason(reason: ReasonCode): DenialReason {
  return reason === 'ALLOWED' ? 'PROVIDER_UNAVAILABLE' : reason;
}

/** A refusal another service made and recorded, passed on under its decision id. */
function recordedRefusal(failure: PortFailure, decisionId: string): CallRefusal {
  const invariant = invariantOf(failure.reason);
  return {
    kind: 'refused',
    reason: failure.reason,
    message: failure.message,
    decisionId,
    ...(invariant === undefined ? {} : { invariant }),
  };
}

/** The entry subject of a decided call (its facts, canonical resource included). */
function callSubject(facts: DecideRequestFacts): EntrySubject {
  return {
    endpointFamily: facts.endpointFamily ?? 'tools/call',
    call: facts.call,
    ...(facts.call.approvalId === undefined ? {} : { approvalId: facts.call.approvalId }),
  };
}

/** The entry subject of an allowed call: the approval it consumes, the handles it reads. */
function allowedSubject(allowed: AllowedCall): EntrySubject {
  const approvalId = allowed.decision.approvalToConsume ?? allowed.facts.call.approvalId;
  return {
    ...callSubject(allowed.facts),
    handleIds: allowed.sourceHandleIds,
    ...(approvalId === undefined ? {} : { approvalId }),
  };
}

function refusalOf(decision: Decision): CallRefusal {
  return {
    kind: 'refused',
    reason: decision.reason,
    message: decision.explanation,
    decisionId: decision.id,
    ...(decision.invariant === undefined ? {} : { invariant: decision.invariant }),
    ...(decision.targetReason === undefined ? {} : { targetReason: decision.targetReason }),
  };
}

/** The approval binding of a call, computed exactly as the decision point checks it (I2). */
function bindingDigestOf(facts: DecideRequestFacts): string {
  return approvalBindingDigest({
    principalId: facts.principal?.id ?? '',
    capabilityId: facts.call.capabilityId,
    canonicalResources: boundResourcesOf(facts.call.resources),
    argumentsDigest: facts.call.argumentsDigest,
  });
}

/**
 * Every resource of a call for an approver, in declaration order: `argument (role): canonical`
 * (`paths[1]` for an array element), each bounded (the digest binds the full values); a resource
 * that did not resolve shows its raw value. Empty when the call names none.
 */
function resourcesSummary(
  capability: Capability | undefined,
  resources: readonly ArgumentResource[] | undefined,
): string {
  return (resources ?? [])
    .map((r) => {
      const role = capability?.resourceArguments.find((a) => a.name === r.argument)?.role;
      const value = r.facts.status === 'resolved' ? r.facts.resource.canonical : r.facts.raw;
      return `${resourceLabel(r)}${role === undefined ? '' : ` (${role})`}: ${value.slice(0, SUMMARY_RESOURCE_CHARS)}`;
    })
    .join('; ');
}

/** The canonical values of one argument's resources (what a decision's explanation may quote). */
function canonicalsOf(
  resources: readonly ArgumentResource[] | undefined,
  argument: string,
): string[] {
  return (resources ?? [])
    .filter((r) => r.argument === argument)
    .map((r) =>
      r.facts.status === 'resolved'
        ? r.facts.resource.canonical
        : (r.facts.canonical ?? r.facts.raw),
    );
}

/** What a pipe into a resource argument reads before deciding: its own allow, under this check. */
export const PIPE_RESOURCE_READ_CHECK = 'pipe.resource_read';

/** Check of the refusal of an allowed call whose tool definition changed before the provider ran. */
export const DEFINITION_CHECK = 'invocation.definition';

/**
 * A handle's content as a resource argument: UTF-8 text, one trailing newline dropped, no control
 * characters, at most `maxBytes` bytes (plus that newline). The reason never quotes the content.
 */
function resourceText(
  payload: Uint8Array,
  maxBytes: number,
):
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'invalid'; readonly why: string } {
  if (payload.length > maxBytes + 1)
    return { kind: 'invalid', why: `holds ${payload.length} bytes, more than ${maxBytes}` };
  let text: string;
  try {
    text = UTF8.decode(payload);
  } catch {
    return { kind: 'invalid', why: 'is not valid UTF-8' };
  }
  if (text.endsWith('\r\n')) text = text.slice(0, -2);
  else if (text.endsWith('\n')) text = text.slice(0, -1);
  if (CONTROL_CHAR.test(text)) return { kind: 'invalid', why: 'holds a control character' };
  return { kind: 'text', text };
}

/** Strict UTF-8: invalid bytes throw rather than becoming U+FFFD. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** C0 controls, DEL and the C1 controls: no resource name carries them. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHAR = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The arguments as a plain object within CALL_LIMITS, or a message naming what is wrong. Depth is
 * checked before serialising so a cyclic or pathological value never reaches JSON.stringify.
 */
export function boundedArguments(value: unknown): Record<string, unknown> | string {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return 'arguments: must be an object';
  if (!withinDepth(value, CALL_LIMITS.maxArgumentDepth)) {
    return `arguments: nested deeper than ${CALL_LIMITS.maxArgumentDepth} levels`;
  }
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    return 'arguments: not representable as JSON';
  }
  if (Buffer.byteLength(text, 'utf8') > CALL_LIMITS.maxArgumentBytes) {
    return `arguments: larger than ${CALL_LIMITS.maxArgumentBytes} bytes`;
  }
  return value as Record<string, unknown>;
}

function withinDepth(value: unknown, remaining: number): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (remaining === 0) return false;
  const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
  return children.every((child) => withinDepth(child, remaining - 1));
}

/**
 * The bytes the vault keeps. All-text output is stored as its text, so a pipe moves what a human
 * would call "the output" (e.g. the file content); anything else as canonical JSON of the result.
 */
function encodeOutput(output: UpstreamCallResult): {
  payload: Uint8Array;
  encoding: 'text' | 'json';
} {
  const texts = output.content.map((c) => (c.type === 'text' ? c.text : undefined));
  // Text output is kept as text (a structuredContent beside it repeats it in practice), so a
  // peek shows the text and a pipe moves it as is.
  if (texts.length > 0 && texts.every((t) => t !== undefined)) {
    return { payload: Buffer.from(texts.join('\n'), 'utf8'), encoding: 'text' };
  }
  const json = canonicalJson({
    content: output.content,
    ...(output.structuredContent === undefined
      ? {}
      : { structuredContent: output.structuredContent }),
    isError: output.isError,
  });
  return { payload: Buffer.from(json, 'utf8'), encoding: 'json' };
}

function labelsOf(
  entry: CallableCapability,
  encoding: 'text' | 'json',
  inherited: Readonly<Record<string, string>>,
  resources: readonly ArgumentResource[] | undefined,
): Record<string, string> {
  // The target's own classification: the most sensitive of the paths it read, else its default.
  let byPath: string | undefined;
  for (const r of resources ?? []) {
    if (r.facts.status !== 'resolved') continue;
    const role = entry.capability.resourceArguments.find((a) => a.name === r.argument)?.role;
    if (role !== 'read') continue;
    const canonical = r.facts.resource.canonical;
    const found = entry.sensitivePaths?.find(
      (p) =>
        canonical === p.prefix ||
        canonical.startsWith(p.prefix.endsWith('/') ? p.prefix : `${p.prefix}/`),
    )?.sensitivity;
    byPath = moreSensitive(byPath, found);
  }
  // Piped data keeps its source's sensitivity, unless what the target read is more sensitive.
  const sensitivity = moreSensitive(inherited['sensitivity'], byPath ?? entry.sensitivity);
  return {
    ...inherited,
    provider: entry.capability.provider,
    capability: entry.capability.id,
    encoding,
    ...(sensitivity === undefined ? {} : { sensitivity }),
  };
}

/**
 * The known sensitivity labels, least sensitive first. A label outside this list ranks just below
 * `secret` (an operator's own class is treated as sensitive, never as more than secret).
 */
const SENSITIVITY_ORDER = ['public', 'internal', 'confidential'];

function sensitivityRank(label: string): number {
  if (label === 'secret') return SENSITIVITY_ORDER.length + 1;
  const known = SENSITIVITY_ORDER.indexOf(label);
  return known === -1 ? SENSITIVITY_ORDER.length : known;
}

/** The more sensitive of two labels; the first on a tie. */
function moreSensitive(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return sensitivityRank(b) > sensitivityRank(a) ? b : a;
}
