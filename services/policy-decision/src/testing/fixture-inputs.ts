import type { CallFacts, DecideRequest, PipeRequest } from '@hcp/policy';
import type { CallRequestFacts, DecideRequestFacts, PipeRequestFacts } from '@hcp/core';
import type { MemoryGrantSource } from './memory-grant-source';

/** A fixture's call as the PDP receives it: the approval travels by id and is registered in the source. */
export function callInputOf(call: CallFacts, source?: MemoryGrantSource): CallRequestFacts {
  if (call.approval !== undefined) source?.approvals.set(call.approval.id, call.approval);
  return {
    capabilityId: call.capabilityId,
    argumentsDigest: call.argumentsDigest,
    ...(call.observedDefinitionDigest !== undefined
      ? { observedDefinitionDigest: call.observedDefinitionDigest }
      : {}),
    ...(call.resources !== undefined ? { resources: call.resources } : {}),
    ...(call.arguments !== undefined ? { arguments: call.arguments } : {}),
    ...(call.approval !== undefined ? { approvalId: call.approval.id } : {}),
  };
}

/** A fixture Decide request as PDP input. */
export function decideInputOf(req: DecideRequest, source?: MemoryGrantSource): DecideRequestFacts {
  return {
    ...(req.principal !== undefined ? { principal: req.principal } : {}),
    session: req.session,
    call: callInputOf(req.call, source),
    ...(req.auditAvailable !== undefined ? { auditAvailable: req.auditAvailable } : {}),
  };
}

/** A fixture pipe request as PDP input. */
export function pipeInputOf(req: PipeRequest, source?: MemoryGrantSource): PipeRequestFacts {
  return {
    sourceHandleId: req.sourceHandleId,
    ...(req.source !== undefined ? { source: req.source } : {}),
    target: {
      ...(req.principal !== undefined ? { principal: req.principal } : {}),
      session: req.session,
      call: callInputOf(req.target, source),
      ...(req.auditAvailable !== undefined ? { auditAvailable: req.auditAvailable } : {}),
    },
  };
}
