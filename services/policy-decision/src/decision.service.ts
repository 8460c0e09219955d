import {
  argumentsDigest,
  HcpError,
  newId,
  type Approval,
  type Decision,
  type EndpointFamily,
  type HandleRecord,
  type Principal,
  type ResourceFacts,
  type SessionFacts,
} from '@hcp/core';
import {
  auditEntryFor,
  type CallFacts,
  type Explanation,
  type PolicyContext,
  type PolicyEngine,
} from '@hcp/policy';
import { createLogger, metrics, type AuditPublisher } from '@hcp/platform';
import type { GrantSource } from './grant-source';
import { PolicyUnavailableError, type PolicyCache } from './policy-cache';

/** A call as the PDP receives it: the approval by id (the PDP fetches it), no clock (the PDP uses its own). */
export interface CallInput {
  readonly capabilityId: string;
  readonly observedDefinitionDigest?: string;
  readonly resource?: ResourceFacts;
  readonly argumentsDigest?: string;
  /** The validated, bounded arguments; grants' argument constraints read them (I5). */
  readonly arguments?: Readonly<Record<string, unknown>>;
  readonly approvalId?: string;
}

/** A Decide request after wire validation. */
export interface DecideInput {
  readonly principal?: Principal;
  readonly session: SessionFacts;
  readonly call: CallInput;
  readonly endpointFamily?: EndpointFamily;
  readonly traceId?: string;
  readonly auditAvailable?: boolean;
}

/** A DecidePipe request after wire validation. */
export interface PipeInput {
  readonly sourceHandleId: string;
  readonly source?: HandleRecord;
  readonly target: DecideInput;
}

/** Checks that need no grants: when policy is unavailable their denials are still exact. */
const GRANT_FREE_CHECKS = new Set(['audit_path', 'principal_binding', 'protocol_state']);
const EMPTY_ARGS = argumentsDigest({});

/**
 * Runs the pure engine on the principal's cached policy. Every path that cannot
 * get fresh policy ends in a POLICY_UNAVAILABLE deny — the PDP never errors
 * into an allow and never decides on grants older than the staleness bound.
 */
export class DecisionService {
  private readonly log = createLogger('DecisionService');

  constructor(
    private readonly engine: PolicyEngine,
    private readonly cache: PolicyCache,
    private readonly source: GrantSource,
    private readonly clock: () => number = Date.now,
    /** Where every decision is recorded (I7); absent only in unit tests of the decision logic. */
    private readonly audit?: AuditPublisher,
  ) {}

  /** Decides one call, and records the decision. */
  async decide(given: DecideInput): Promise<Decision> {
    const started = performance.now();
    const now = this.clock();
    const input = this.withAuditState(given);
    const prepared = await this.prepare(input, now);
    const decision =
      'unavailable' in prepared
        ? this.unavailable(input, now, prepared.unavailable, (ctx, req) =>
            this.engine.decide(req, ctx),
          )
        : this.engine.decide(prepared.request, prepared.context);
    const family = input.endpointFamily ?? 'tools/call';
    return this.observe('decide', this.record(input, now, decision, [], family), started);
  }

  /** Decides a call and returns the trace; a dry run, so it is not recorded. */
  async explain(input: DecideInput): Promise<Explanation> {
    const now = this.clock();
    const prepared = await this.prepare(input, now);
    if ('unavailable' in prepared) {
      const decision = this.unavailable(input, now, prepared.unavailable, (ctx, req) =>
        this.engine.decide(req, ctx),
      );
      return { decision, trace: [] };
    }
    return this.engine.explain(prepared.request, prepared.context);
  }

  /** Decides a pipe: source ownership (from the vault's metadata) and the target's policy. */
  async decidePipe(given: PipeInput): Promise<Decision> {
    const started = performance.now();
    const now = this.clock();
    const input: PipeInput = { ...given, target: this.withAuditState(given.target) };
    const prepared = await this.prepare(input.target, now);
    const pipeOf = (req: ReturnType<typeof toRequest>) => ({
      principal: req.principal,
      session: req.session,
      now: req.now,
      ...(req.auditAvailable !== undefined ? { auditAvailable: req.auditAvailable } : {}),
      ...(req.traceId !== undefined ? { traceId: req.traceId } : {}),
      sourceHandleId: input.sourceHandleId,
      ...(input.source !== undefined ? { source: input.source } : {}),
      target: req.call,
    });
    const decision =
      'unavailable' in prepared
        ? this.unavailable(input.target, now, prepared.unavailable, (ctx, req) =>
            this.engine.decidePipe(pipeOf(req), ctx),
          )
        : this.engine.decidePipe(pipeOf(prepared.request), prepared.context);
    const recorded = this.record(
      input.target,
      now,
      decision,
      [input.sourceHandleId],
      'handle/pipe',
    );
    return this.observe('pipe', recorded, started);
  }

  /** The request as the engine must see it: the audit path is unavailable if ours is. */
  private withAuditState(input: DecideInput): DecideInput {
    return this.audit !== undefined && !this.audit.available()
      ? { ...input, auditAvailable: false }
      : input;
  }

  /**
   * Records the decision (I7). If the entry cannot be accepted, an allow becomes an
   * AUDIT_UNAVAILABLE deny — nothing runs unaudited; a deny stands and is logged loudly.
   */
  private record(
    input: DecideInput,
    now: number,
    decision: Decision,
    handleIds: string[],
    family: EndpointFamily,
  ): Decision {
    if (this.audit === undefined) return decision;
    const req = toRequest(input, now, undefined);
    try {
      this.audit.record(
        auditEntryFor(req, decision, { endpointFamily: family, call: req.call, handleIds }),
      );
      return decision;
    } catch (err: unknown) {
      if (!(err instanceof HcpError) || err.reason !== 'AUDIT_UNAVAILABLE') throw err;
      this.log.error(
        { decision: decision.id, outcome: decision.outcome },
        'audit refused the decision entry',
      );
      if (decision.outcome === 'deny') return decision;
      return {
        id: newId('dec'),
        outcome: 'deny',
        reason: 'AUDIT_UNAVAILABLE',
        invariant: 'I7',
        check: 'audit_path',
        explanation: 'deny AUDIT_UNAVAILABLE: the decision could not be recorded',
        decidedAt: now,
        ablations: this.engine.ablations,
      };
    }
  }

  /** Counts the decision by outcome and reason and records its latency (OpenTelemetry; no-op when off). */
  private observe(_kind: 'decide' | 'pipe', decision: Decision, started: number): Decision {
    const m = metrics();
    m.decisions.add(1, { outcome: decision.outcome, reason: decision.reason });
    m.decisionDuration.record(performance.now() - started, { outcome: decision.outcome });
    return decision;
  }

  private async prepare(
    input: DecideInput,
    now: number,
  ): Promise<
    { request: ReturnType<typeof toRequest>; context: PolicyContext } | { unavailable: string }
  > {
    const principal = input.principal;
    if (principal === undefined) {
      // Nothing to fetch: the engine denies PRINCIPAL_UNAUTHENTICATED on an empty context.
      return { request: toRequest(input, now, undefined), context: EMPTY };
    }
    try {
      const [context, approval] = await Promise.all([
        this.cache.contextFor(principal.id),
        input.call.approvalId
          ? this.fetchApproval(input.call.approvalId)
          : Promise.resolve(undefined),
      ]);
      return { request: toRequest(input, now, approval), context };
    } catch (err: unknown) {
      if (err instanceof PolicyUnavailableError) return { unavailable: err.message };
      throw err;
    }
  }

  private async fetchApproval(id: string): Promise<Approval | undefined> {
    try {
      return await this.source.approval(id);
    } catch (err: unknown) {
      throw new PolicyUnavailableError(
        `approval ${id} unavailable: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /**
   * Fail closed. The grant-free checks still run on an empty context so that a protocol or
   * binding fault keeps its exact reason; anything that would need grants is POLICY_UNAVAILABLE.
   */
  private unavailable(
    input: DecideInput,
    now: number,
    why: string,
    run: (ctx: PolicyContext, req: ReturnType<typeof toRequest>) => Decision,
  ): Decision {
    const early = run(EMPTY, toRequest(input, now, undefined));
    if (early.outcome === 'deny' && GRANT_FREE_CHECKS.has(early.check)) return early;
    this.log.warn({ principal: input.principal?.id, why }, 'policy unavailable; denying');
    return {
      id: newId('dec'),
      outcome: 'deny',
      reason: 'POLICY_UNAVAILABLE',
      check: 'policy_source',
      explanation: `deny POLICY_UNAVAILABLE: ${why}`,
      decidedAt: now,
      ablations: this.engine.ablations,
    };
  }
}

const EMPTY: PolicyContext = { grants: [], capabilities: new Map() };

function toRequest(input: DecideInput, now: number, approval: Approval | undefined) {
  const c = input.call;
  const call: CallFacts = {
    capabilityId: c.capabilityId,
    argumentsDigest: c.argumentsDigest ?? EMPTY_ARGS,
    ...(c.observedDefinitionDigest !== undefined
      ? { observedDefinitionDigest: c.observedDefinitionDigest }
      : {}),
    ...(c.resource !== undefined ? { resource: c.resource } : {}),
    ...(c.arguments !== undefined ? { arguments: c.arguments } : {}),
    ...(approval !== undefined ? { approval } : {}),
  };
  return {
    ...(input.principal !== undefined ? { principal: input.principal } : {}),
    session: input.session,
    now,
    call,
    ...(input.endpointFamily !== undefined ? { endpointFamily: input.endpointFamily } : {}),
    ...(input.traceId !== undefined ? { traceId: input.traceId } : {}),
    ...(input.auditAvailable !== undefined ? { auditAvailable: input.auditAvailable } : {}),
  };
}
