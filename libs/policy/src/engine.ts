import {
  approvalBindingDigest,
  boundResourcesOf,
  CHECK_INVARIANT as CORE_CHECK_INVARIANT,
  denial,
  newId,
  type DenialReason,
  type DenialSpec,
  type CanonicalResource,
  type Capability,
  type Decision,
  type HandleRecord,
  type InvariantId,
  type NearestGrant,
  type ReasonCode,
  type ResourceArgument,
  resourceLabel,
} from '@hcp/core';
import type { AblationSwitch } from './ablations';
import { matchGrant } from './grant-matcher';
import type {
  CallFacts,
  CheckResult,
  DecideRequest,
  PeekRequest,
  PipeRequest,
  PolicyContext,
  RequestEnvelope,
} from './request';

/**
 * The named checks, one per invariant, in the order the engine runs them.
 * The order is part of the contract (docs/policy.md): the first failing check
 * decides the reason code, so the same request always gets the same reason.
 */
export const CHECK_ORDER = [
  'audit_path', // I7
  'principal_binding', // I4
  'protocol_state', // I8
  'metadata_authority', // I1
  'canonical_resource', // I3
  'scoped_grant', // I5
  'approval', // I2
  'data_flow', // I6
] as const;

/** Name of one check in CHECK_ORDER. */
export type CheckName = (typeof CHECK_ORDER)[number];

/** The invariant each check enforces (the one table lives in libs/core). */
export const CHECK_INVARIANT: Readonly<Record<CheckName, InvariantId>> = CORE_CHECK_INVARIANT;

/** One line of an explanation: what a check concluded and why. */
export interface CheckTrace {
  readonly check: CheckName;
  readonly invariant: InvariantId;
  readonly result: CheckResult;
  readonly detail: string;
}

/** A decision with the full trace of every check; what Explain returns. */
export interface Explanation {
  readonly decision: Decision;
  readonly trace: readonly CheckTrace[];
}

/** Engine configuration: which protocol versions exist, which checks are ablated, how ids are made. */
export interface PolicyEngineOptions {
  readonly supportedProtocolVersions: readonly string[];
  readonly disabled?: Iterable<AblationSwitch>;
  readonly idFactory?: () => string;
}

interface Failure {
  readonly reason: DenialReason;
  readonly detail: string;
  readonly nearest?: NearestGrant;
  readonly targetReason?: ReasonCode;
}

/** What a check returns: pass (optionally with a note), fail, or skipped/disabled with a note. */
type Outcome =
  | { readonly ok: true; readonly note: string; readonly result?: CheckResult }
  | ({ readonly ok: false } & Failure);

/** Mutable scratch state threaded through one evaluation. */
interface Scratch {
  capability?: Capability;
  /** The call's canonical resources, one per declared argument (element), in declaration order. */
  resources: DecidedResource[];
  matchedGrantId?: string;
  /** Scopes of every grant that covered a resource (one entry per grant matched). */
  matchedScopes: (readonly string[])[];
  approvalToConsume?: string;
  /** Set when a prerequisite failed, so dependent checks report "skipped" in an explanation. */
  blocked: boolean;
  /** True when an explanation is being built: only then are the pass notes worth their strings. */
  tracing: boolean;
}

const PASS = (note: string): Outcome => ({ ok: true, note });
/** A pass whose note nobody reads (no explanation is being built): no string to make. */
const PASSED: Outcome = { ok: true, note: '' };
const SKIP = (note: string): Outcome => ({ ok: true, note, result: 'skipped' });
const OFF = (name: AblationSwitch): Outcome => ({
  ok: true,
  note: `disabled by ablation ${name}`,
  result: 'disabled',
});
const FAIL = (reason: DenialReason, detail: string, nearest?: NearestGrant): Outcome =>
  nearest === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, nearest };

/**
 * The decision engine: pure, synchronous, no I/O. The PDP service, the
 * embedded runtime and the microbenchmark all call this same code.
 */
export class PolicyEngine {
  private readonly versions: ReadonlySet<string>;
  private readonly off: ReadonlySet<AblationSwitch>;
  private readonly ablationList: readonly string[];
  private readonly nextId: () => string;

  constructor(options: PolicyEngineOptions) {
    this.versions = new Set(options.supportedProtocolVersions);
    this.off = new Set(options.disabled ?? []);
    this.ablationList = Object.freeze([...this.off].sort());
    this.nextId = options.idFactory ?? (() => newId('dec'));
  }

  /** Ablation switches in force; a production engine returns an empty list. */
  get ablations(): readonly string[] {
    return this.ablationList;
  }

  /** Decides a tools/call. */
  decide(req: DecideRequest, ctx: PolicyContext): Decision {
    return this.run('call', req, ctx, undefined).decision;
  }

  /** Decides a tools/call and returns the trace of every check. */
  explain(req: DecideRequest, ctx: PolicyContext): Explanation {
    const trace: CheckTrace[] = [];
    const { decision } = this.run('call', req, ctx, trace);
    return { decision, trace };
  }

  /** Decides moving the data of a source handle into the target call (I4 ownership + I6 target policy). */
  decidePipe(req: PipeRequest, ctx: PolicyContext): Decision {
    return this.run('pipe', req, ctx, undefined).decision;
  }

  /** Like decidePipe, with the trace. */
  explainPipe(req: PipeRequest, ctx: PolicyContext): Explanation {
    const trace: CheckTrace[] = [];
    const { decision } = this.run('pipe', req, ctx, trace);
    return { decision, trace };
  }

  /** Decides a bounded preview of a handle: only its owner, only before it expires. */
  decidePeek(req: PeekRequest): Decision {
    return this.run('peek', req, EMPTY_CONTEXT, undefined).decision;
  }

  private run(
    mode: 'call' | 'pipe' | 'peek',
    req: DecideRequest | PipeRequest | PeekRequest,
    ctx: PolicyContext,
    trace: CheckTrace[] | undefined,
  ): { decision: Decision } {
    const s: Scratch = {
      blocked: false,
      tracing: trace !== undefined,
      resources: [],
      matchedScopes: [],
    };
    let failure: (Failure & { check: CheckName }) | undefined;
    const handle =
      mode === 'pipe'
        ? handleOf(req as PipeRequest)
        : mode === 'peek'
          ? handleOf(req as PeekRequest)
          : undefined;
    const call: CallFacts | undefined =
      mode === 'call'
        ? (req as DecideRequest).call
        : mode === 'pipe'
          ? (req as PipeRequest).target
          : undefined;

    const targetOff = mode === 'pipe' && this.off.has('pipe_target_policy');
    for (const check of CHECK_ORDER) {
      let out: Outcome;
      if (targetOff && TARGET_CHECKS.has(check)) {
        out = OFF('pipe_target_policy');
      } else
        switch (check) {
          case 'audit_path':
            out = this.auditPath(req);
            break;
          case 'principal_binding':
            out = this.principalBinding(req, handle);
            break;
          case 'protocol_state':
            out = this.protocolState(req);
            break;
          case 'metadata_authority':
            out =
              call === undefined
                ? SKIP('no capability invoked')
                : this.metadataAuthority(call, ctx, s);
            break;
          case 'canonical_resource':
            out =
              call === undefined ? SKIP('no capability invoked') : this.canonicalResource(call, s);
            break;
          case 'scoped_grant':
            out =
              call === undefined
                ? SKIP('no capability invoked')
                : this.scopedGrant(req, call, ctx, s);
            break;
          case 'approval':
            out =
              call === undefined ? SKIP('no capability invoked') : this.approvalGate(req, call, s);
            break;
          case 'data_flow':
            out = mode === 'pipe' ? this.dataFlow(handle, s) : SKIP('not a pipe');
            break;
        }
      if (!out.ok) {
        if (failure === undefined) failure = { ...out, check };
        if (trace === undefined) break;
      }
      if (trace !== undefined) {
        trace.push({
          check,
          invariant: CHECK_INVARIANT[check],
          result: out.ok ? (out.result ?? 'pass') : 'fail',
          detail: out.ok ? out.note : `${out.reason}: ${out.detail}`,
        });
      }
    }

    // In a pipe, a failure of the target's own checks is reported as PIPE_TARGET_DENIED (I6),
    // keeping the target's reason beside it; with the target policy ablated those checks pass.
    if (mode === 'pipe' && failure !== undefined && TARGET_CHECKS.has(failure.check)) {
      failure = {
        check: 'data_flow',
        reason: 'PIPE_TARGET_DENIED',
        targetReason: failure.reason,
        detail: `target ${failure.check} denied: ${failure.reason}: ${failure.detail}`,
        ...(failure.nearest ? { nearest: failure.nearest } : {}),
      };
    }
    return { decision: this.finish(req, s, failure) };
  }

  private finish(
    req: RequestEnvelope,
    s: Scratch,
    failure: (Failure & { check: CheckName }) | undefined,
  ): Decision {
    // Built by assignment, not conditional spreads: this is the hot path of every decision,
    // and V8 clones spread objects far more slowly than it fills a literal.
    if (failure === undefined) {
      const d: Mutable<Decision> = {
        id: this.nextId(),
        outcome: 'allow',
        reason: 'ALLOWED',
        check: 'all',
        explanation:
          s.matchedGrantId !== undefined
            ? `allow: grant ${s.matchedGrantId} matched`
            : 'allow: all checks passed',
        decidedAt: req.now,
        ablations: this.ablationList,
      };
      if (s.matchedGrantId !== undefined) d.matchedGrantId = s.matchedGrantId;
      if (s.approvalToConsume !== undefined) d.approvalToConsume = s.approvalToConsume;
      return d;
    }
    const invariant = CHECK_INVARIANT[failure.check];
    const spec: Mutable<DenialSpec> = {
      id: this.nextId(),
      reason: failure.reason,
      check: failure.check,
      explanation: `deny ${failure.reason} at ${invariant} ${failure.check}: ${failure.detail}`,
      decidedAt: req.now,
      ablations: this.ablationList,
    };
    if (failure.nearest !== undefined) spec.nearestGrant = failure.nearest;
    if (failure.targetReason !== undefined) spec.targetReason = failure.targetReason;
    return denial(spec);
  }

  // I7: refuse rather than run unaudited.
  private auditPath(req: RequestEnvelope): Outcome {
    if (req.auditAvailable !== false) return PASS('audit path available');
    if (this.off.has('audit_required')) return OFF('audit_required');
    return FAIL('AUDIT_UNAVAILABLE', 'audit publisher is over its buffer bound');
  }

  // I4: an authenticated principal, using its own session and (for pipes and peeks) its own handle.
  private principalBinding(req: RequestEnvelope, handle: HandleFacts | undefined): Outcome {
    const principal = req.principal;
    if (principal === undefined)
      return FAIL('PRINCIPAL_UNAUTHENTICATED', 'no authenticated principal');
    const owner = req.session.ownerPrincipalId;
    if (owner !== undefined && owner !== principal.id) {
      if (!this.off.has('session_binding')) {
        return FAIL('SESSION_FOREIGN', 'session was initialized by another principal');
      }
    }
    if (handle === undefined) return PASS(`principal ${principal.id}`);
    const record = handle.record;
    // A missing handle and a foreign one give the same answer, so ids cannot be probed.
    if (record === undefined)
      return FAIL('HANDLE_NOT_OWNED', `handle ${handle.id} is not owned by ${principal.id}`);
    const foreign = record.ownerPrincipalId !== principal.id;
    if (foreign && !this.off.has('handle_owner')) {
      return FAIL('HANDLE_NOT_OWNED', `handle ${handle.id} is not owned by ${principal.id}`);
    }
    if (record.expiresAt <= req.now) return FAIL('HANDLE_EXPIRED', `handle ${handle.id} expired`);
    if (foreign) return OFF('handle_owner');
    return PASS(`principal ${principal.id} owns handle ${handle.id}`);
  }

  // I8: the session exists, is live, completed initialize, and speaks a supported, agreed version.
  private protocolState(req: RequestEnvelope): Outcome {
    const session = req.session;
    switch (session.state) {
      case 'none':
        if (this.off.has('init_check')) return OFF('init_check');
        return FAIL('SESSION_NOT_INITIALIZED', 'no session: initialize first');
      case 'unknown':
      case 'ended':
        if (this.off.has('session_state')) return OFF('session_state');
        return FAIL('SESSION_UNKNOWN', `session is ${session.state}`);
      case 'expired':
        if (this.off.has('session_state')) return OFF('session_state');
        return FAIL('SESSION_EXPIRED', 'session expired');
      case 'active':
        break;
    }
    if (!session.initialized && !this.off.has('init_check')) {
      return FAIL('SESSION_NOT_INITIALIZED', 'initialize has not completed');
    }
    if (this.off.has('version_check')) return OFF('version_check');
    const negotiated = session.negotiatedVersion;
    if (negotiated !== undefined && !this.versions.has(negotiated)) {
      return FAIL(
        'PROTOCOL_VERSION_UNSUPPORTED',
        `negotiated version ${negotiated} is not supported`,
      );
    }
    const requested = session.requestVersion;
    if (requested !== undefined) {
      if (!this.versions.has(requested)) {
        return FAIL(
          'PROTOCOL_VERSION_UNSUPPORTED',
          `request version ${requested} is not supported`,
        );
      }
      if (negotiated !== undefined && requested !== negotiated) {
        return FAIL(
          'PROTOCOL_VERSION_MISMATCH',
          `request says ${requested}, session negotiated ${negotiated}`,
        );
      }
    }
    return PASS(`session active, version ${negotiated ?? requested ?? 'unstated'}`);
  }

  // I1: only the manifest gives authority, and only for the definition it pinned.
  private metadataAuthority(call: CallFacts, ctx: PolicyContext, s: Scratch): Outcome {
    const capability = ctx.capabilities.get(call.capabilityId);
    if (capability === undefined) {
      s.blocked = true;
      return FAIL('CAPABILITY_UNKNOWN', `${call.capabilityId} has no manifest entry`);
    }
    s.capability = capability;
    const pinned = capability.definitionDigest;
    if (pinned !== undefined && call.observedDefinitionDigest !== pinned) {
      if (this.off.has('definition_pinning')) return OFF('definition_pinning');
      return FAIL(
        'TOOL_DEFINITION_CHANGED',
        `definition of ${capability.id} differs from the pinned digest`,
      );
    }
    return PASS(
      pinned === undefined
        ? `${capability.id} in manifest (not pinned)`
        : `${capability.id} matches pinned definition`,
    );
  }

  // I3: policy sees the canonicaliser's resources, never the caller's strings: every declared
  // resource argument must be present, of its declared kind, and resolved.
  private canonicalResource(call: CallFacts, s: Scratch): Outcome {
    const capability = s.capability;
    if (capability === undefined) return SKIP('capability unknown');
    const declared = capability.resourceArguments;
    const given = call.resources ?? [];
    if (declared.length === 0) {
      if (given.length === 0) return PASS('capability takes no resource');
      s.blocked = true;
      return FAIL('INPUT_INVALID', `${capability.id} declares no resource argument`);
    }
    // Every fact must belong to a declared argument: a resource policy did not ask about is
    // never silently ignored (nor decided as if it were another argument's).
    for (const r of given) {
      const arg = declared.find((a) => a.name === r.argument);
      if (arg === undefined || (arg.many !== true && r.index !== 0)) {
        s.blocked = true;
        return FAIL('INPUT_INVALID', `${r.argument} is not a declared resource argument`);
      }
    }
    let ablated = false;
    // Ablated: one resource is decided, the first element of the LAST declared argument, as a
    // runtime that knows one resource argument per tool (usually the written one) would: a move
    // is checked on its destination only. The others are not even read.
    const single = this.off.has('every_resource');
    const decided = single ? declared.slice(-1) : declared;
    for (const arg of decided) {
      let seen = 0;
      for (const r of given) {
        if (r.argument !== arg.name || (single && seen > 0)) continue;
        seen++;
        const facts = r.facts;
        const kind = facts.status === 'resolved' ? facts.resource.kind : facts.kind;
        if (kind !== arg.canonicalizer) {
          s.blocked = true;
          return FAIL(
            'INPUT_INVALID',
            `${resourceLabel(r)} is a ${kind}, ${capability.id} expects a ${arg.canonicalizer}`,
          );
        }
        if (facts.status === 'resolved') {
          s.resources.push({ arg, argument: r.argument, index: r.index, resource: facts.resource });
          continue;
        }
        if (this.off.has('canonical_resource')) {
          // Ablated: decide on the caller's string, as a runtime without canonicalisation would.
          const resource = { kind: facts.kind, raw: facts.raw, canonical: facts.raw };
          s.resources.push({ arg, argument: r.argument, index: r.index, resource });
          ablated = true;
          continue;
        }
        s.blocked = true;
        const detail = `${resourceLabel(r)}: ${facts.rule}: ${facts.detail}`;
        switch (facts.status) {
          case 'denied':
            return FAIL('RESOURCE_DENIED', detail);
          case 'unresolvable':
            return FAIL('RESOURCE_UNRESOLVABLE', detail);
          case 'invalid':
            return FAIL('INPUT_INVALID', detail);
        }
      }
      if (seen === 0) {
        s.blocked = true;
        return FAIL('INPUT_INVALID', `resource argument ${arg.name} missing`);
      }
    }
    if (ablated) return OFF('canonical_resource');
    if (single && given.length > 1) return OFF('every_resource');
    if (!s.tracing) return PASSED;
    return PASS(
      s.resources
        .map((r) => `${resourceLabel(r)} (${r.arg.role}) ${r.resource.canonical}`)
        .join('; '),
    );
  }

  // I5: principal, capability, scopes and argument constraints match a live grant for EVERY
  // canonical resource of the call (each with the scopes its argument's role needs); a call
  // without resources needs one grant for the capability.
  private scopedGrant(
    req: RequestEnvelope,
    call: CallFacts,
    ctx: PolicyContext,
    s: Scratch,
  ): Outcome {
    const capability = s.capability;
    if (capability === undefined || s.blocked) return SKIP('prerequisite check failed');
    if (this.off.has('grant_matching')) return OFF('grant_matching');
    const principal = req.principal;
    if (principal === undefined) return FAIL('PRINCIPAL_UNAUTHENTICATED', 'no principal');
    if (s.resources.length === 0) {
      const match = matchGrant(
        principal.id,
        ctx.grants,
        capability,
        undefined,
        req.now,
        call.arguments,
      );
      if (!match.matched) return this.noGrant(principal.id, match, undefined, s);
      s.matchedGrantId = match.grant.id;
      s.matchedScopes.push(match.grant.scopes);
      return PASS(`grant ${match.grant.id}`);
    }
    const notes: string[] | undefined = s.tracing ? [] : undefined;
    const anyPort = this.off.has('url_scheme_port');
    for (const r of s.resources) {
      const match = matchGrant(
        principal.id,
        ctx.grants,
        capability,
        r.resource,
        req.now,
        call.arguments,
        r.arg.scopes === undefined && !anyPort
          ? undefined
          : { ...(r.arg.scopes && { argumentScopes: r.arg.scopes }), anySchemeAndPort: anyPort },
      );
      if (!match.matched) return this.noGrant(principal.id, match, r, s);
      s.matchedGrantId ??= match.grant.id;
      s.matchedScopes.push(match.grant.scopes);
      notes?.push(`${resourceLabel(r)}: grant ${match.grant.id}`);
    }
    return notes === undefined ? PASSED : PASS(notes.join('; '));
  }

  private noGrant(
    principalId: string,
    match: Extract<ReturnType<typeof matchGrant>, { matched: false }>,
    r: DecidedResource | undefined,
    s: Scratch,
  ): Outcome {
    s.blocked = true;
    // With several resources, say which one no grant covered (a single one needs no naming).
    const several =
      r !== undefined && ((s.capability?.resourceArguments.length ?? 0) > 1 || r.arg.many === true);
    const on = several ? `${resourceLabel(r)} (${r.arg.role}): ` : '';
    if (match.nearest === undefined)
      return FAIL('NO_MATCHING_GRANT', `${on}principal ${principalId} holds no grants`);
    const nearest =
      on === ''
        ? match.nearest
        : { grantId: match.nearest.grantId, mismatch: `${on}${match.nearest.mismatch}` };
    return FAIL(
      match.reason,
      `${on}nearest grant ${match.nearest.grantId}: ${match.nearest.mismatch}`,
      nearest,
    );
  }

  // I2: a high-risk call needs the grant (checked above) AND an approval bound to exactly this call.
  private approvalGate(req: RequestEnvelope, call: CallFacts, s: Scratch): Outcome {
    const capability = s.capability;
    if (capability === undefined || s.blocked) return SKIP('prerequisite check failed');
    if (!capability.approvalRequired) return PASS('no approval required');
    if (this.off.has('approval_gate')) return OFF('approval_gate');
    const approval = call.approval;
    if (approval === undefined)
      return FAIL('APPROVAL_REQUIRED', `${capability.id} requires an approval for this call`);
    if (approval.state !== 'approved')
      return FAIL('APPROVAL_REQUIRED', `approval ${approval.id} is ${approval.state}`);
    const principalId = req.principal?.id ?? '';
    const expected = approvalBindingDigest({
      principalId,
      capabilityId: capability.id,
      // Ablated every_resource decides one resource, but the approval was filed (and shown) over
      // every resource the call canonicalised: the gate checks that binding, not a narrower one.
      canonicalResources: this.off.has('every_resource')
        ? boundResourcesOf(call.resources)
        : s.resources.map((r) => ({
            argument: r.argument,
            index: r.index,
            canonical: r.resource.canonical,
          })),
      argumentsDigest: call.argumentsDigest,
    });
    if (
      approval.principalId !== principalId ||
      approval.capabilityId !== capability.id ||
      approval.bindingDigest !== expected
    ) {
      return FAIL('APPROVAL_MISMATCH', `approval ${approval.id} is bound to a different call`);
    }
    if (approval.consumedAt !== undefined)
      return FAIL('APPROVAL_CONSUMED', `approval ${approval.id} was already used`);
    if (approval.expiresAt <= req.now)
      return FAIL('APPROVAL_EXPIRED', `approval ${approval.id} expired`);
    s.approvalToConsume = approval.id;
    return PASS(`approval ${approval.id} bound to this call`);
  }

  // I6: source ownership was proven by principal_binding; the target passed its own checks; and
  // data labelled secret only flows into a target whose grants (every grant that covered one of
  // its resources) all carry the `flow:secret` scope.
  private dataFlow(handle: HandleFacts | undefined, s: Scratch): Outcome {
    if (handle?.record === undefined)
      return FAIL('HANDLE_NOT_OWNED', 'pipe without a source handle');
    if (this.off.has('pipe_target_policy')) return OFF('pipe_target_policy');
    const sensitivity = handle.record.labels['sensitivity'];
    const everyGrantAllows =
      s.matchedScopes.length > 0 &&
      s.matchedScopes.every((scopes) => scopes.includes('flow:secret'));
    if (sensitivity === 'secret' && !everyGrantAllows) {
      return FAIL(
        'PIPE_TARGET_DENIED',
        `secret data may not flow into ${s.capability?.id ?? 'the target'} without scope flow:secret`,
      );
    }
    return PASS(`handle ${handle.id} may flow into ${s.capability?.id ?? 'the target'}`);
  }
}

/** Checks that belong to the target of a pipe; their failures become PIPE_TARGET_DENIED. */
const TARGET_CHECKS: ReadonlySet<CheckName> = new Set([
  'metadata_authority',
  'canonical_resource',
  'scoped_grant',
  'approval',
]);

const EMPTY_CONTEXT: PolicyContext = { grants: [], capabilities: new Map() };

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One canonical resource of the call with the declaration of the argument that named it. */
interface DecidedResource {
  readonly arg: ResourceArgument;
  readonly argument: string;
  readonly index: number;
  readonly resource: CanonicalResource;
}

interface HandleFacts {
  readonly id: string;
  readonly record: HandleRecord | undefined;
}

function handleOf(req: PipeRequest | PeekRequest): HandleFacts {
  return 'sourceHandleId' in req
    ? { id: req.sourceHandleId, record: req.source }
    : { id: req.handleId, record: req.handle };
}
