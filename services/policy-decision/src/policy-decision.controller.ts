import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import {
  decideRequestFromProto,
  decisionToProto,
  enums,
  pipeRequestFromProto,
  type policy,
} from '@hcp/proto';
import { DecisionService, deadlineOf } from './decision.service';

/** Token under which the composition root provides the DecisionService instance. */
export const DECISION_SERVICE = Symbol('DecisionService');

const RESULT_NUMBERS = { pass: 1, fail: 2, skipped: 3, disabled: 4 } as const;

/** hcp.policy.v1.PolicyDecision over gRPC: convert (which validates), decide, convert back. */
@Controller()
export class PolicyDecisionController {
  constructor(@Inject(DECISION_SERVICE) private readonly decisions: DecisionService) {}

  @GrpcMethod('PolicyDecision', 'Decide')
  // Nest passes the grpc-js call third: its deadline bounds the decision (no late allows).
  async decide(
    request: policy.DecideRequest,
    _metadata?: unknown,
    call?: unknown,
  ): Promise<policy.DecideResponse> {
    const decision = await this.decisions.decide(decideRequestFromProto(request), deadlineOf(call));
    return { decision: decisionToProto(decision) };
  }

  @GrpcMethod('PolicyDecision', 'DecidePipe')
  async decidePipe(
    request: policy.DecidePipeRequest,
    _metadata?: unknown,
    call?: unknown,
  ): Promise<policy.DecidePipeResponse> {
    const decision = await this.decisions.decidePipe(
      pipeRequestFromProto(request),
      deadlineOf(call),
    );
    return { decision: decisionToProto(decision) };
  }

  @GrpcMethod('PolicyDecision', 'Explain')
  async explain(request: policy.ExplainRequest): Promise<policy.ExplainResponse> {
    const { decision, trace } = await this.decisions.explain(
      decideRequestFromProto(request.request, 'request'),
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
