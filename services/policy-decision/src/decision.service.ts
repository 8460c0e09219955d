import {
  argumentsDigest,
  denial,
  HcpError,
  type Approval,
  type Decision,
  type DenialSpec,
  type DecideRequestFacts,
  type EndpointFamily,
  type PipeRequestFacts,
} from '@hcp/core';
import {
  recordDecision,
  refuse,
  type CallFacts,
  type RefusalSubject,
  type Explanation,
  type PolicyContext,
  type PolicyEngine,
} from '@hcp/policy';
import { createLogger, metrics, type AuditPublisher } from '@hcp/platform';
import type { GrantSource } from './grant-source';
import { PolicyUnavailableError, type PolicyCache } from './policy-cache';

/** What the caller's transport says about one decision. */
export interface DecideOptions {
  /**
   * How long the caller still waits, in ms, as of the moment the request arrived (the gRPC
   * deadline less the time of receipt). Relative, so the service's own clock (pinned in tests)
   * places the deadline. Absent: the caller set none.
   */
  readonly budgetMs?: number;
}

/**
 * The answer still has to travel back before the caller's own timer fires, and the server's
 * deadline is later than the caller's by the request's transit: a decision this close to the
 * deadline is treated as late.
 */
export const DEADLINE_MARGIN_MS = 5;

/** The budget of a gRPC server call (grpc-js `getDeadline()`: a Date, or Infinity when none). */
export function deadlineOf(call: unknown, now: number = Date.now()): DecideOptions {
  const get = (call as { getDeadline?: unknown } | null | undefined)?.getDeadline;
  if (typeof get !== 'function') return {};
  const d: unknown = get.call(call);
  const ms = d instanceof Date ? d.getTime() : typeof d === 'number' ? d : Number.NaN;
  return Number.isFinite(ms) ? { budgetMs: ms - now } : {};
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

  /**
   * Decides one call, and records the decision. Past the caller's deadline nothing is decided,
   * and an allow reached too late is recorded as the POLICY_UNAVAILABLE the caller already acted
   * on: the audit never holds an allow for a call the enforcement point refused on timeout.
   */
  async decide(given: DecideRequestFacts, options: DecideOptions = {}): Promise<Decision> {
    const started = performance.now();
    const now = this.clock();
    const input = this.withAuditState(given);
    const family = input.endpointFamily ?? 'tools/call';
    const deadline = options.budgetMs === undefined ? undefined : now + options.budgetMs;
    if (this.isLate(deadline, now))
      return this.observe('decide', this.late(input, now, deadline, [], family), started);
    const prepared = await this.prepare(input, now);
    const decision =
      'unavailable' in prepared
        ? this.unavailable(input, now, prepared.unavailable, (ctx, req) =>
            this.engine.decide(req, ctx),
          )
        : this.engine.decide(prepared.request, prepared.context);
    if (decision.outcome === 'allow' && this.isLate(deadline, this.clock()))
      return this.observe('decide', this.late(input, now, deadline, [], family), started);
    return this.observe('decide', this.record(input, now, decision, [], family), started);
  }

  /**
   * The name of a capability's first declared resource argument, from the principal's cached
   * policy (the AuthZEN API names a resource without its argument). Undefined when there is no
   * principal, the capability is unknown or takes no resource, or policy is unavailable: the
   * decision that follows then says which.
   */
  async firstResourceArgument(
    principalId: string | undefined,
    capabilityId: string,
  ): Promise<string | undefined> {
    if (principalId === undefined || principalId === '') return undefined;
    try {
      const context = await this.cache.contextFor(principalId);
      return context.capabilities.get(capabilityId)?.resourceArguments[0]?.name;
    } catch (err: unknown) {
      if (err instanceof PolicyUnavailableError) return undefined;
      throw err;
    }
  }

  /** Decides a call and returns the trace; a dry run, so it is not recorded. */
  async explain(input: DecideRequestFacts): Promise<Explanation> {
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
  async decidePipe(given: PipeRequestFacts, options: DecideOptions = {}): Promise<Decision> {
    const started = performance.now();
    const now = this.clock();
    const input: PipeRequestFacts = { ...given, target: this.withAuditState(given.target) };
    const handleIds = [input.sourceHandleId];
    const deadline = options.budgetMs === undefined ? undefined : now + options.budgetMs;
    if (this.isLate(deadline, now))
      return this.observe(
        'pipe',
        this.late(input.target, now, deadline, handleIds, 'handle/pipe'),
        started,
      );
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
    if (decision.outcome === 'allow' && this.isLate(deadline, this.clock()))
      return this.observe(
        'pipe',
        this.late(input.target, now, deadline, handleIds, 'handle/pipe'),
        started,
      );
    const recorded = this.record(input.target, now, decision, handleIds, 'handle/pipe');
    return this.observe('pipe', recorded, started);
  }

  /** True once the caller's deadline (less the margin for the way back) has passed. */
  private isLate(deadline: number | undefined, at: number): boolean {
    return deadline !== undefined && at + DEADLINE_MARGIN_MS >= deadline;
  }

  /**
   * The refusal of a decision the caller no longer waits for: POLICY_UNAVAILABLE (what the caller
   * answers on its own timeout), recorded through the one refusal path.
   */
  private late(
    input: DecideRequestFacts,
    now: number,
    deadline: number | undefined,
    handleIds: string[],
    family: EndpointFamily,
  ): Decision {
    return this.refuse(
      {
        reason: 'POLICY_UNAVAILABLE',
        check: 'deadline',
        explanation: `deny POLICY_UNAVAILABLE: the caller's deadline (${new Date(deadline ?? now).toISOString()}) passed before the decision was made`,
        decidedAt: now,
        ablations: this.engine.ablations,
      },
      subjectOf(input, now, family, handleIds),
    );
  }

  /** The request as the engine must see it: the audit path is unavailable if ours is. */
  private withAuditState(input: DecideRequestFacts): DecideRequestFacts {
    return this.audit !== undefined && !this.audit.available()
      ? { ...input, auditAvailable: false }
      : input;
  }

  /**
   * Records the decision (I7). If the entry cannot be accepted, an allow becomes an
   * AUDIT_UNAVAILABLE deny — nothing runs unaudited; a deny stands and is logged loudly.
   */
  private record(
    input: DecideRequestFacts,
    now: number,
    decision: Decision,
    handleIds: string[],
    family: EndpointFamily,
  ): Decision {
    if (this.audit === undefined) return decision;
    const subject = subjectOf(input, now, family, handleIds);
    try {
      recordDecision(this.audit, decision, subject);
      return decision;
    } catch (err: unknown) {
      if (!(err instanceof HcpError) || err.reason !== 'AUDIT_UNAVAILABLE') throw err;
      this.log.error(
        { decision: decision.id, outcome: decision.outcome },
        'audit refused the decision entry',
      );
      if (decision.outcome === 'deny') return decision;
      return this.refuse(
        {
          reason: 'AUDIT_UNAVAILABLE',
          check: 'audit_path',
          explanation: 'deny AUDIT_UNAVAILABLE: the decision could not be recorded',
          decidedAt: now,
          ablations: this.engine.ablations,
        },
        subject,
      );
    }
  }

  /**
   * The PDP's use of the one refusal path. When the audit refuses the entry too, the refusal
   * stands all the same (nothing is allowed) and is logged.
   */
  private refuse(spec: DenialSpec, subject: RefusalSubject): Decision {
    if (this.audit === undefined) return denial(spec);
    const refused = refuse(this.audit, spec, subject);
    if (!refused.audited)
      this.log.error(
        { decision: refused.decision.id, reason: spec.reason, err: refused.auditError?.message },
        'audit refused a refusal entry',
      );
    return refused.decision;
  }

  /** Counts the decision by outcome and reason and records its latency (OpenTelemetry; no-op when off). */
  private observe(_kind: 'decide' | 'pipe', decision: Decision, started: number): Decision {
    const m = metrics();
    m.decisions.add(1, { outcome: decision.outcome, reason: decision.reason });
    m.decisionDuration.record(performance.now() - started, { outcome: decision.outcome });
    return decision;
  }

  private async prepare(
    input: DecideRequestFacts,
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
    input: DecideRequestFacts,
    now: number,
    why: string,
    run: (ctx: PolicyContext, req: ReturnType<typeof toRequest>) => Decision,
  ): Decision {
    const early = run(EMPTY, toRequest(input, now, undefined));
    if (early.outcome === 'deny' && GRANT_FREE_CHECKS.has(early.check)) return early;
    this.log.warn({ principal: input.principal?.id, why }, 'policy unavailable; denying');
    // Recorded by `record` like every decision the engine makes.
    return denial({
      reason: 'POLICY_UNAVAILABLE',
      check: 'policy_source',
      explanation: `deny POLICY_UNAVAILABLE: ${why}`,
      decidedAt: now,
      ablations: this.engine.ablations,
    });
  }
}

/** What a decision's audit entry records beside the decision: who asked, about which call. */
function subjectOf(
  input: DecideRequestFacts,
  now: number,
  family: EndpointFamily,
  handleIds: string[],
): RefusalSubject {
  const req = toRequest(input, now, undefined);
  return {
    ...(req.principal === undefined ? {} : { principal: req.principal }),
    session: req.session,
    ...(req.traceId === undefined ? {} : { traceId: req.traceId }),
    endpointFamily: family,
    call: req.call,
    handleIds,
  };
}

const EMPTY: PolicyContext = { grants: [], capabilities: new Map() };

function toRequest(input: DecideRequestFacts, now: number, approval: Approval | undefined) {
  const c = input.call;
  const call: CallFacts = {
    capabilityId: c.capabilityId,
    argumentsDigest: c.argumentsDigest ?? EMPTY_ARGS,
    ...(c.observedDefinitionDigest !== undefined
      ? { observedDefinitionDigest: c.observedDefinitionDigest }
      : {}),
    ...(c.resources !== undefined ? { resources: c.resources } : {}),
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
