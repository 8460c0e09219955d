import {
  HcpError,
  approvalBindingDigest,
  argumentsDigest,
  canonicalJson,
  newId,
  type Capability,
  type Decision,
  type EndpointFamily,
  type HandleRecord,
  type InvariantId,
  type Principal,
  type ReasonCode,
  type ResourceFacts,
  type SessionFacts,
} from '@hcp/core';
import { auditEntryFor } from '@hcp/policy';
import type { DecideRequestFacts } from '@hcp/proto';
import type { UpstreamCallResult } from '../providers/upstream-client';
import type { CallableCapability, CallPorts } from './ports';

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
 * The call path (issue 5 item 6) and the built-in hcp_peek / hcp_pipe (item 7), free of any
 * transport: decide first, invoke the provider only on allow, keep the output in the vault and hand
 * out a handle, and never return a result whose invocation could not be audited (I7).
 */
export class CallService {
  private readonly now: () => number;

  constructor(private readonly ports: CallPorts) {
    this.now = ports.now ?? Date.now;
  }

  async callTool(input: CallToolInput): Promise<CallOutcome> {
    const family: EndpointFamily = 'tools/call';
    const args = boundedArguments(input.args);
    if (typeof args === 'string')
      return this.refuseLocally(input, family, input.capabilityId, args);

    const entry = await this.guard(
      () => this.ports.manifest.capability(input.capabilityId),
      'POLICY_UNAVAILABLE',
    );
    if (isRefusal(entry)) return entry;
    // Unknown capability: nothing to validate against; the decision point answers CAPABILITY_UNKNOWN.
    const invalid = entry === undefined ? undefined : this.validate(entry, args);
    if (invalid !== undefined)
      return this.refuseLocally(input, family, input.capabilityId, invalid, 'input_schema');
    const facts = await this.callFacts(input, family, entry, args);

    const decision = await this.guard(
      () => this.ports.decision.decide(facts),
      'POLICY_UNAVAILABLE',
    );
    if (isRefusal(decision)) return decision;
    // The decision point has audited the decision (allow or deny); a deny needs nothing more.
    if (decision.outcome !== 'allow') return this.denied(input, facts, decision);
    return this.invoke(input, facts, decision, entry, args, {});
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
    const result = await this.guard(
      () =>
        this.ports.vault.peek({
          principalId: input.principal.id,
          handleId: input.handleId,
          maxBytes,
        }),
      'HANDLE_NOT_OWNED',
    );
    if (isRefusal(result)) return this.refusePeek(input, result);
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

    const entry = await this.guard(
      () => this.ports.manifest.capability(target),
      'POLICY_UNAVAILABLE',
    );
    if (isRefusal(entry)) return entry;
    // The resource must be canonicalised before the decision, and the payload may not be read
    // before the decision, so the payload can never be the target's resource argument.
    if (entry?.capability.resourceArgument?.name === name) {
      return this.refuseLocally(
        input,
        family,
        target,
        `argumentName: ${name} is the resource argument of ${target}; a handle cannot name the resource`,
      );
    }
    // The decision binds to the handle reference, not to the (still unread) payload.
    const decided = { ...args, [name]: { hcpHandle: input.sourceHandleId } };
    const facts = await this.callFacts(input, family, entry, args, decided);

    const source = await this.guard(
      () =>
        this.ports.vault.describe({
          principalId: input.principal.id,
          handleId: input.sourceHandleId,
        }),
      'HANDLE_NOT_OWNED',
    );
    if (isRefusal(source)) return source;

    const decision = await this.guard(
      () =>
        this.ports.decision.decidePipe({
          sourceHandleId: input.sourceHandleId,
          ...(source === undefined ? {} : { source }),
          target: facts,
        }),
      'POLICY_UNAVAILABLE',
    );
    if (isRefusal(decision)) return decision;
    if (decision.outcome !== 'allow') return this.denied(input, facts, decision);

    const resolved = await this.guard(
      () =>
        this.ports.vault.resolveForPipe({
          principalId: input.principal.id,
          handleId: input.sourceHandleId,
          decisionId: decision.id,
        }),
      'HANDLE_NOT_OWNED',
    );
    if (isRefusal(resolved)) return withDecision(resolved, decision);

    const payload = Buffer.from(resolved.payload).toString('utf8');
    const piped = { ...args, [name]: payload };
    // The payload exists only now, so the pinned schema is checked against the real value here,
    // after the allow but before anything is consumed or invoked.
    const invalid = entry === undefined ? undefined : this.validate(entry, piped);
    if (invalid !== undefined) {
      return this.recordInvocation(input, facts, decision, [resolved.handle.id], {
        kind: 'refused',
        reason: 'INPUT_INVALID',
        message: invalid,
        decisionId: decision.id,
      });
    }
    // The output is derived from the source data: it keeps the source's labels (a secret stays a
    // secret after a pipe) and the source's sensitivity wins over the target's.
    const inherited: Record<string, string> = {
      ...resolved.handle.labels,
      [PIPED_FROM_LABEL]: resolved.handle.id,
    };
    return this.invoke(input, facts, decision, entry, piped, inherited, [resolved.handle.id]);
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
    const resource =
      entry === undefined ? undefined : await this.canonicalize(entry.capability, args);
    return {
      principal: input.principal,
      session: input.session,
      call: {
        capabilityId,
        argumentsDigest: argumentsDigest(digestOf),
        // The (already bounded) arguments, so grants can constrain them; for a pipe, the handle
        // reference the digest covers, never the payload.
        arguments: digestOf,
        ...(input.observedDigest === undefined
          ? {}
          : { observedDefinitionDigest: input.observedDigest }),
        ...(resource === undefined ? {} : { resource }),
        ...(input.approvalId === undefined ? {} : { approvalId: input.approvalId }),
      },
      endpointFamily: family,
      // When the audit buffer is full the decision point denies with AUDIT_UNAVAILABLE (I7).
      auditAvailable: this.ports.audit.available(),
      ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
    };
  }

  /** A canonicaliser that throws is carried to the decision as an unresolvable resource (fail closed). */
  private async canonicalize(
    capability: Capability,
    args: Readonly<Record<string, unknown>>,
  ): Promise<ResourceFacts | undefined> {
    try {
      return await this.ports.canonicalizer.canonicalize(capability, args);
    } catch (err) {
      const arg = capability.resourceArgument;
      const raw = arg === undefined ? undefined : args[arg.name];
      return {
        status: 'unresolvable',
        kind: arg?.canonicalizer ?? 'id',
        raw: typeof raw === 'string' ? raw.slice(0, 256) : '',
        rule: 'canonicalizer.error',
        detail: err instanceof Error ? err.message : 'the canonicaliser failed',
      };
    }
  }

  /** Everything after an allow: consume the approval, invoke, store, audit, answer. */
  private async invoke(
    input: CallToolInput | PipeInput,
    facts: DecideRequestFacts,
    decision: Decision,
    entry: CallableCapability | undefined,
    args: Record<string, unknown>,
    inheritedLabels: Readonly<Record<string, string>>,
    sourceHandleIds: readonly string[] = [],
  ): Promise<CallOutcome> {
    const capabilityId = facts.call.capabilityId;
    if (entry === undefined) {
      // The decision point allowed a capability the edge has no manifest entry for: fail closed.
      return this.recordInvocation(input, facts, decision, sourceHandleIds, {
        kind: 'refused',
        reason: 'CAPABILITY_UNKNOWN',
        message: `${capabilityId} has no manifest entry at the edge`,
        decisionId: decision.id,
        invariant: 'I1',
      });
    }

    if (decision.approvalToConsume !== undefined) {
      const approvalId = decision.approvalToConsume;
      const consumed = await this.guard(
        () =>
          this.ports.approvals.consume({
            approvalId,
            principalId: input.principal.id,
            decisionId: decision.id,
            bindingDigest: bindingDigestOf(facts),
          }),
        'APPROVAL_CONSUMED',
      );
      if (isRefusal(consumed)) {
        return this.recordInvocation(
          input,
          facts,
          decision,
          sourceHandleIds,
          withDecision(consumed, decision),
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
      const reason = err instanceof HcpError ? err.reason : 'PROVIDER_UNAVAILABLE';
      // A request the provider made for this call refused on its way out (the egress proxy
      // refusing a redirect hop to a private address) is a resource refusal (I3): say which rule.
      const rule = err instanceof HcpError ? err.details['rule'] : undefined;
      const egress = reason === 'RESOURCE_DENIED';
      return this.recordInvocation(input, facts, decision, sourceHandleIds, {
        kind: 'refused',
        reason,
        message:
          egress && typeof rule === 'string'
            ? `${capabilityId}: a request the provider made was refused (${rule})`
            : `${capabilityId}: the provider call failed`,
        decisionId: decision.id,
        ...(egress ? { invariant: 'I3' as const } : {}),
      });
    }

    const encoded = encodeOutput(output);
    const stored = await this.guard(
      () =>
        this.ports.vault.put({
          ownerPrincipalId: input.principal.id,
          producingCapability: capabilityId,
          labels: labelsOf(entry, encoded.encoding, inheritedLabels, facts.call.resource),
          payload: encoded.payload,
        }),
      'PAYLOAD_TOO_LARGE',
    );
    if (isRefusal(stored)) {
      return this.recordInvocation(
        input,
        facts,
        decision,
        sourceHandleIds,
        withDecision(stored, decision),
      );
    }

    let preview: CallSuccess['preview'];
    if (entry.inlinePreview) {
      // Through the vault, so the preview is redacted and bounded exactly like hcp_peek.
      const peeked = await this.guard(
        () =>
          this.ports.vault.peek({
            principalId: input.principal.id,
            handleId: stored.id,
            maxBytes: Math.min(
              entry.previewMaxBytes ?? CALL_LIMITS.defaultPreviewBytes,
              CALL_LIMITS.maxPreviewBytes,
            ),
          }),
        'HANDLE_NOT_OWNED',
      );
      // A failed preview is not a failed call: the handle is there, the agent can hcp_peek later.
      if (!isRefusal(peeked)) preview = { text: peeked.preview, truncated: peeked.truncated };
    }

    const success: CallSuccess = {
      kind: 'handle',
      handleId: stored.id,
      decisionId: decision.id,
      sizeBytes: stored.sizeBytes,
      toolError: output.isError,
      ...(preview === undefined ? {} : { preview }),
    };
    return this.recordInvocation(input, facts, decision, [...sourceHandleIds, stored.id], success);
  }

  /**
   * Records the invocation audit entry (check `invocation`, linked to the allow decision by its id)
   * and only then returns `outcome`. If the audit refuses, the provider has ALREADY run (its side
   * effects cannot be undone) but its output is withheld and AUDIT_UNAVAILABLE returned: a result
   * must never reach the agent without an audit entry saying how it was produced (I7). The handle,
   * if one was stored, stays in the vault owned by the principal and expires with its TTL.
   */
  private async recordInvocation<T extends CallOutcome>(
    input: CallToolInput | PipeInput,
    facts: DecideRequestFacts,
    decision: Decision,
    handleIds: readonly string[],
    outcome: T,
  ): Promise<T | CallRefusal> {
    const invocation: Decision =
      outcome.kind === 'refused'
        ? {
            ...decision,
            outcome: 'deny',
            reason: outcome.reason,
            check: 'invocation',
            explanation: outcome.message,
            decidedAt: this.now(),
            ...(outcome.invariant === undefined ? {} : { invariant: outcome.invariant }),
          }
        : { ...decision, check: 'invocation', decidedAt: this.now() };
    const refused = this.audit(input, facts, invocation, handleIds);
    if (refused !== undefined) return refused;
    // Output is released only once its entry is published (not merely buffered), when the
    // wiring asks for that; a publish that misses its bound withholds the output (I7).
    if (outcome.kind !== 'refused' && this.ports.auditPublished !== undefined) {
      try {
        await this.ports.auditPublished();
      } catch (err) {
        return {
          kind: 'refused',
          reason: 'AUDIT_UNAVAILABLE',
          message: `the invocation's audit entry was not published in time (${err instanceof Error ? err.message : 'unknown'})`,
          decisionId: decision.id,
          invariant: 'I7',
        };
      }
    }
    return outcome;
  }

  /** A refusal the edge decides itself (malformed input): it gets its own decision id and audit entry. */
  private refuseLocally(
    input: PeekInput | CallToolInput | PipeInput,
    family: EndpointFamily,
    capabilityId: string | undefined,
    message: string,
    check: 'input_bounds' | 'input_schema' = 'input_bounds',
  ): CallRefusal {
    const decision: Decision = {
      id: newId('dec'),
      outcome: 'deny',
      reason: 'INPUT_INVALID',
      check,
      explanation: message,
      decidedAt: this.now(),
      ablations: [],
    };
    const facts: DecideRequestFacts = {
      principal: input.principal,
      session: input.session,
      call: { capabilityId: capabilityId ?? '', argumentsDigest: '' },
      endpointFamily: family,
      ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
    };
    const handleIds = 'handleId' in input ? [input.handleId] : [];
    return (
      this.audit(input, facts, decision, handleIds, capabilityId === undefined) ??
      refusalOf(decision)
    );
  }

  /**
   * A peek the vault refused. The vault decided and audited it, but its entry has no decision id
   * the agent could quote (Peek carries none), so the edge records the refusal it returns under a
   * decision id of its own: every denial an agent sees can be found in the audit by that id.
   */
  private refusePeek(input: PeekInput, refusal: CallRefusal): CallRefusal {
    const invariant =
      refusal.invariant ??
      (refusal.reason === 'HANDLE_NOT_OWNED' || refusal.reason === 'HANDLE_EXPIRED'
        ? 'I4'
        : undefined);
    const decision: Decision = {
      id: newId('dec'),
      outcome: 'deny',
      reason: refusal.reason,
      check: 'vault.peek',
      explanation: refusal.message,
      decidedAt: this.now(),
      ablations: [],
      ...(invariant === undefined ? {} : { invariant }),
    };
    const facts: DecideRequestFacts = {
      principal: input.principal,
      session: input.session,
      call: { capabilityId: '', argumentsDigest: '' },
      endpointFamily: 'handle/peek',
      ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
    };
    return (
      this.audit(input, facts, decision, [input.handleId], true) ?? {
        ...refusal,
        decisionId: decision.id,
        ...(invariant === undefined ? {} : { invariant }),
      }
    );
  }

  /** Records one entry; returns the AUDIT_UNAVAILABLE refusal when the publisher refuses. */
  private audit(
    input: { readonly principal: Principal; readonly traceId?: string },
    facts: DecideRequestFacts,
    decision: Decision,
    handleIds: readonly string[],
    withoutCall = false,
  ): CallRefusal | undefined {
    const entry = auditEntryFor(
      {
        principal: input.principal,
        session: facts.session,
        now: decision.decidedAt,
        ...(input.traceId === undefined ? {} : { traceId: input.traceId }),
      },
      decision,
      {
        endpointFamily: facts.endpointFamily ?? 'tools/call',
        handleIds,
        ...(withoutCall ? {} : { call: facts.call }),
      },
    );
    const approvalId = decision.approvalToConsume ?? facts.call.approvalId;
    try {
      this.ports.audit.record(approvalId === undefined ? entry : { ...entry, approvalId });
      return undefined;
    } catch (err) {
      return {
        kind: 'refused',
        reason: 'AUDIT_UNAVAILABLE',
        message: err instanceof HcpError ? err.message : 'the audit publisher refused the entry',
        decisionId: decision.id,
        invariant: 'I7',
      };
    }
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
   * approve it itself. Filing is best effort: when grant-store refuses, the deny stands without an id.
   */
  private async denied(
    input: CallToolInput | PipeInput,
    facts: DecideRequestFacts,
    decision: Decision,
  ): Promise<CallRefusal> {
    const refusal = refusalOf(decision);
    const needsApproval =
      decision.reason === 'APPROVAL_REQUIRED' || decision.targetReason === 'APPROVAL_REQUIRED';
    if (!needsApproval || input.approvalId !== undefined) return refusal;
    const call = facts.call;
    const resource = canonicalResourceOf(facts);
    const summary =
      `${input.principal.id} asks to call ${call.capabilityId}` +
      (resource === null ? '' : ` on ${resource.slice(0, SUMMARY_RESOURCE_CHARS)}`) +
      (facts.endpointFamily === 'handle/pipe' ? ` with data piped from a handle` : '') +
      ` (arguments ${call.argumentsDigest})`;
    const approval = await this.guard(
      () =>
        this.ports.approvals.request({
          principalId: input.principal.id,
          capabilityId: call.capabilityId,
          bindingDigest: bindingDigestOf(facts),
          summary,
        }),
      'POLICY_UNAVAILABLE',
    );
    if (isRefusal(approval)) return refusal;
    return { ...refusal, approvalRequestId: approval.id, approvalExpiresAt: approval.expiresAt };
  }

  /** Runs a port call; an HcpError becomes a refusal with its reason, anything else `fallback`. */
  private async guard<T>(run: () => Promise<T>, fallback: ReasonCode): Promise<T | CallRefusal> {
    try {
      return await run();
    } catch (err) {
      return {
        kind: 'refused',
        reason: err instanceof HcpError ? err.reason : fallback,
        message: err instanceof HcpError ? err.message : `dependency failed (${fallback})`,
      };
    }
  }
}

function isRefusal(value: unknown): value is CallRefusal {
  return (
    typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'refused'
  );
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

function withDecision(refusal: CallRefusal, decision: Decision): CallRefusal {
  return { ...refusal, decisionId: decision.id };
}

/** The canonical resource an approval binds to; null when the call names none (as the engine computes it). */
function canonicalResourceOf(facts: DecideRequestFacts): string | null {
  const resource = facts.call.resource;
  return resource?.status === 'resolved' ? resource.resource.canonical : null;
}

/** The approval binding of a call, computed exactly as the decision point checks it (I2). */
function bindingDigestOf(facts: DecideRequestFacts): string {
  return approvalBindingDigest({
    principalId: facts.principal?.id ?? '',
    capabilityId: facts.call.capabilityId,
    canonicalResource: canonicalResourceOf(facts),
    argumentsDigest: facts.call.argumentsDigest,
  });
}

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
  resource?: ResourceFacts,
): Record<string, string> {
  const canonical = resource?.status === 'resolved' ? resource.resource.canonical : undefined;
  const byPath =
    canonical === undefined
      ? undefined
      : entry.sensitivePaths?.find(
          (p) =>
            canonical === p.prefix ||
            canonical.startsWith(p.prefix.endsWith('/') ? p.prefix : `${p.prefix}/`),
        )?.sensitivity;
  const sensitivity = inherited['sensitivity'] ?? byPath ?? entry.sensitivity;
  return {
    ...inherited,
    provider: entry.capability.provider,
    capability: entry.capability.id,
    encoding,
    ...(sensitivity === undefined ? {} : { sensitivity }),
  };
}
