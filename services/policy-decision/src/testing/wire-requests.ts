import type { DecideRequest as EngineDecide, PipeRequest as EnginePipe } from '@hcp/policy';
import { decideRequestToProto, handleToProto, type policy } from '@hcp/proto';
import type { MemoryGrantSource } from './memory-grant-source';

/** A fixture's Decide request as the edge would send it over gRPC (approval by id, no clock). */
export function decideRequestToWire(
  req: EngineDecide,
  source?: MemoryGrantSource,
): policy.DecideRequest {
  const { approval, ...call } = req.call;
  if (approval !== undefined) source?.approvals.set(approval.id, approval);
  return decideRequestToProto({
    ...req,
    call: { ...call, ...(approval ? { approvalId: approval.id } : {}) },
  });
}

/** A fixture pipe request over gRPC. */
export function pipeRequestToWire(
  req: EnginePipe,
  source?: MemoryGrantSource,
): policy.DecidePipeRequest {
  return {
    source: {
      handleId: req.sourceHandleId,
      handle: req.source ? handleToProto(req.source) : undefined,
    },
    target: decideRequestToWire(
      {
        ...(req.principal ? { principal: req.principal } : {}),
        session: req.session,
        now: req.now,
        call: req.target,
        ...(req.auditAvailable !== undefined ? { auditAvailable: req.auditAvailable } : {}),
      },
      source,
    ),
  };
}
