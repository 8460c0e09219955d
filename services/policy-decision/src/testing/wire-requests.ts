import type { DecideRequest as EngineDecide, PipeRequest as EnginePipe } from '@hcp/policy';
import {
  enums,
  handleToProto,
  principalToProto,
  resourceFactsToProto,
  sessionToProto,
  type policy,
} from '@hcp/proto';
import type { MemoryGrantSource } from './memory-grant-source';

/** A fixture's Decide request as the edge would send it over gRPC (approval by id, no clock). */
export function decideRequestToWire(
  req: EngineDecide,
  source?: MemoryGrantSource,
): policy.DecideRequest {
  const c = req.call;
  if (c.approval !== undefined) source?.approvals.set(c.approval.id, c.approval);
  return {
    principal: req.principal ? principalToProto(req.principal) : undefined,
    session: sessionToProto(req.session),
    call: {
      capabilityId: c.capabilityId,
      observedDefinitionDigest: c.observedDefinitionDigest ?? '',
      resource: c.resource ? resourceFactsToProto(c.resource) : undefined,
      argumentsDigest: c.argumentsDigest,
      approvalId: c.approval?.id ?? '',
    },
    endpointFamily: enums.endpointFamily.toWire(req.endpointFamily ?? 'tools/call'),
    traceId: req.traceId ?? '',
    auditUnavailable: req.auditAvailable === false,
  };
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
