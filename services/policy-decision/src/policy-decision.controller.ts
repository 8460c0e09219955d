import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { decisionToProto, enums, type policy } from '@hcp/proto';
import { DecisionService, deadlineOf } from './decision.service';
import { decideInputFromWire, pipeInputFromWire } from './wire';

/** Token under which the composition root provides the DecisionService instance. */
export const DECISION_SERVICE = Symbol('DecisionService');

const RESULT_NUMBERS = { pass: 1, fail: 2, skipped: 3, disabled: 4 } as const;

/** hcp.policy.v1.PolicyDecision over gRPC: validate, decide, map back. No rules live here. */
@Controller()
export class PolicyDecisionController {
  constructor(@Inject(DECISION_SERVICE) private readonly decisions: DecisionService) {}

  @GrpcMethod('PolicyDecision', 'Decide')
  // Nest passes the grpc-js call third: its deadline bounds the decision (no late allows).
  async decide(
    request: unknown,
    _metadata?: unknown,
    call?: unknown,
  ): Promise<policy.DecideResponse> {
    const decision = await this.decisions.decide(decideInputFromWire(request), deadlineOf(call));
    return { decision: decisionToProto(decision) };
  }

  @GrpcMethod('PolicyDecision', 'DecidePipe')
  async decidePipe(
    request: unknown,
    _metadata?: unknown,
    call?: unknown,
  ): Promise<policy.DecidePipeResponse> {
    const decision = await this.decisions.decidePipe(pipeInputFromWire(request), deadlineOf(call));
    return { decision: decisionToProto(decision) };
  }

  @GrpcMethod('PolicyDecision', 'Explain')
  async explain(request: unknown): Promise<policy.ExplainResponse> {
    const body = (request ?? {}) as { request?: unknown };
    const { decision, trace } = await this.decisions.explain(
      decideInputFromWire(body.request, 'request'),
    );
    return {
      decision: decisionToProto(decision),
      checkTraces: trace.map((t) => ({
        check: t.check,
        invariant: enums.invariant.toWire(t.invariant),
        result: RESULT_NUMBERS[t.result],
        detail: t.detail,
      })),
    };
  }
}
