import {
  decideRequestToProto,
  decisionFromProto,
  pipeRequestToProto,
  type core,
  type policy,
} from '@hcp/proto';
import type { DecisionPort } from '../call/ports';
import { unary, type GrpcAdapterOptions } from './grpc-call';

/** A response without a decision: the contract says treat it as a deny, so the port fails closed. */
function decisionOf(decision: core.Decision | undefined, rpc: string) {
  if (decision === undefined)
    throw new Error(`${rpc}: the decision point answered without a decision`);
  return decisionFromProto(decision);
}

/**
 * The decision port over policy-decision's gRPC API (Decide, DecidePipe), each call bounded by a
 * deadline. The PDP records the audit entry of every decision itself.
 */
export function grpcDecisionPort(
  client: policy.PolicyDecisionClient,
  opts: GrpcAdapterOptions = {},
): DecisionPort {
  return {
    async decide(facts) {
      const res = await unary(client.decide.bind(client), decideRequestToProto(facts), opts);
      return decisionOf(res.decision, 'Decide');
    },
    async decidePipe(facts) {
      const res = await unary(client.decidePipe.bind(client), pipeRequestToProto(facts), opts);
      return decisionOf(res.decision, 'DecidePipe');
    },
  };
}
