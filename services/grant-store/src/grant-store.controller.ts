import type { Metadata } from '@grpc/grpc-js';
import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { HcpError, type DenialReason, type Principal } from '@hcp/core';
import { refuse } from '@hcp/policy';
import { createLogger, type AuditPublisher } from '@hcp/platform';
import { ApprovalService } from './approval.service';
import { approverOf, type ApproverAuthentication } from './approver';
import { CapabilityService } from './capability.service';
import { ApproverRequiredError, FailedPreconditionError, NotFoundError } from './errors';
import { GrantService } from './grant.service';
import { GrantStoreExceptionFilter } from './grant-store.exception-filter';
import {
  approvalToProto,
  capabilityFromRequest,
  capabilityToProto,
  createGrantRequestFromProto,
  decideApprovalRequestFromProto,
  grantToProto,
  pendingApprovalToProto,
  requestApprovalRequestFromProto,
  type grants as pb,
} from '@hcp/proto';
import { GRANT_STORE_APPROVER_AUTH, GRANT_STORE_AUDIT } from './grant-store.tokens';

/** gRPC surface of grant-store: generated messages to domain inputs (checked by the converters) and back; no rules here. */
@Controller()
@UseFilters(new GrantStoreExceptionFilter())
export class GrantStoreController {
  private readonly log = createLogger('GrantStoreController');

  constructor(
    @Inject(GrantService) private readonly grants: GrantService,
    @Inject(CapabilityService) private readonly capabilities: CapabilityService,
    @Inject(ApprovalService) private readonly approvals: ApprovalService,
    @Inject(GRANT_STORE_APPROVER_AUTH) private readonly approverAuth: ApproverAuthentication,
    @Inject(GRANT_STORE_AUDIT) private readonly audit: AuditPublisher | null,
  ) {}

  @GrpcMethod('GrantStore', 'CreateGrant')
  async createGrant(request: pb.CreateGrantRequest): Promise<pb.CreateGrantResponse> {
    const grant = await this.grants.create(createGrantRequestFromProto(request));
    return { grant: grantToProto(grant) };
  }

  @GrpcMethod('GrantStore', 'RevokeGrant')
  async revokeGrant(request: pb.RevokeGrantRequest): Promise<pb.RevokeGrantResponse> {
    const grant = await this.grants.revoke(request.grantId, request.reason);
    return { grant: grantToProto(grant) };
  }

  @GrpcMethod('GrantStore', 'GetGrant')
  async getGrant(request: pb.GetGrantRequest): Promise<pb.GetGrantResponse> {
    const grant = await this.grants.get(request.grantId);
    return { grant: grantToProto(grant) };
  }

  @GrpcMethod('GrantStore', 'ListGrants')
  async listGrants(request: pb.ListGrantsRequest): Promise<pb.ListGrantsResponse> {
    const page = await this.grants.list(request);
    return { grants: page.grants.map(grantToProto), nextPageToken: page.nextPageToken };
  }

  @GrpcMethod('GrantStore', 'GetPrincipalGrants')
  async getPrincipalGrants(
    request: pb.GetPrincipalGrantsRequest,
  ): Promise<pb.GetPrincipalGrantsResponse> {
    const snapshot = await this.grants.principalSnapshot(request.principalId);
    return { grants: snapshot.grants.map(grantToProto), revision: snapshot.revision };
  }

  @GrpcMethod('GrantStore', 'PutCapability')
  async putCapability(request: pb.PutCapabilityRequest): Promise<pb.PutCapabilityResponse> {
    const result = await this.capabilities.put(
      capabilityFromRequest(request.capability, 'capability'),
    );
    return {
      capability: capabilityToProto(result.capability),
      manifestRevision: result.manifestRevision,
    };
  }

  @GrpcMethod('GrantStore', 'GetCapability')
  async getCapability(request: pb.GetCapabilityRequest): Promise<pb.GetCapabilityResponse> {
    const capability = await this.capabilities.get(request.capabilityId);
    return { capability: capabilityToProto(capability) };
  }

  @GrpcMethod('GrantStore', 'ListCapabilities')
  async listCapabilities(
    request: pb.ListCapabilitiesRequest,
  ): Promise<pb.ListCapabilitiesResponse> {
    const snapshot = await this.capabilities.list(request.provider);
    return {
      capabilities: snapshot.capabilities.map(capabilityToProto),
      manifestRevision: snapshot.revision,
    };
  }

  @GrpcMethod('GrantStore', 'RequestApproval')
  async requestApproval(request: pb.RequestApprovalRequest): Promise<pb.RequestApprovalResponse> {
    const approval = await this.approvals.request(requestApprovalRequestFromProto(request));
    return { approval: approvalToProto(approval) };
  }

  @GrpcMethod('GrantStore', 'DecideApproval')
  async decideApproval(
    request: pb.DecideApprovalRequest,
    metadata?: Metadata,
  ): Promise<pb.DecideApprovalResponse> {
    // Authenticate before reading the body, so an unauthenticated caller learns nothing from it.
    let approver: Principal | undefined;
    let approvalId: string | undefined;
    try {
      approver = await approverOf(this.approverAuth, metadata, 'DecideApproval');
      const input = decideApprovalRequestFromProto(request);
      approvalId = input.approvalId;
      const approval = await this.approvals.decide(input.approvalId, input.verdict, approver.id);
      return { approval: approvalToProto(approval) };
    } catch (err: unknown) {
      // A refused approval decision (not an approver, self-approval, wrong state) is a denial
      // like any other, made and recorded by the refusal path (I7); it is rethrown naming the
      // decision id of its entry, so the caller's error links to it.
      throw this.auditRefusedDecision(err, approver, approvalId);
    }
  }

  /** Records a refused DecideApproval; returns the error to throw (with its decision id once recorded). */
  private auditRefusedDecision(
    err: unknown,
    approver: Principal | undefined,
    approvalId: string | undefined,
  ): unknown {
    if (this.audit === null) return err;
    const reason: DenialReason =
      err instanceof ApproverRequiredError
        ? 'PRINCIPAL_UNAUTHENTICATED'
        : err instanceof FailedPreconditionError
          ? err.reason === undefined || err.reason === 'ALLOWED'
            ? 'APPROVAL_REQUIRED'
            : err.reason
          : err instanceof HcpError && err.reason !== 'ALLOWED'
            ? err.reason
            : 'INPUT_INVALID';
    const principalId =
      approver?.id ?? (err instanceof ApproverRequiredError ? err.principalId : undefined);
    const refused = refuse(
      this.audit,
      {
        reason,
        check: 'grant-store.decide_approval',
        explanation: err instanceof Error ? err.message : 'DecideApproval refused',
        decidedAt: Date.now(),
      },
      {
        ...(approver !== undefined ? { principal: approver } : {}),
        ...(approver === undefined && principalId !== undefined ? { principalId } : {}),
        endpointFamily: 'approval',
        ...(approvalId === undefined ? {} : { approvalId }),
      },
    );
    if (!refused.audited) {
      this.log.error(
        { err: refused.auditError?.message, reason },
        'audit refused a DecideApproval refusal entry',
      );
      return err;
    }
    return recordedAs(err, refused.decision.id, reason);
  }

  @GrpcMethod('GrantStore', 'ListApprovals')
  async listApprovals(
    request: pb.ListApprovalsRequest,
    metadata?: Metadata,
  ): Promise<pb.ListApprovalsResponse> {
    // Every principal's pending calls are an operator's view, not an agent's.
    await approverOf(this.approverAuth, metadata, 'ListApprovals');
    const page = await this.approvals.listPending(request);
    return {
      approvals: page.approvals.map(pendingApprovalToProto),
      nextPageToken: page.nextPageToken,
    };
  }

  @GrpcMethod('GrantStore', 'ConsumeApproval')
  async consumeApproval(request: pb.ConsumeApprovalRequest): Promise<pb.ConsumeApprovalResponse> {
    const approval = await this.approvals.consume(
      request.approvalId,
      request.principalId,
      request.bindingDigest,
    );
    return { approval: approvalToProto(approval) };
  }

  @GrpcMethod('GrantStore', 'GetApproval')
  async getApproval(request: pb.GetApprovalRequest): Promise<pb.GetApprovalResponse> {
    return pendingApprovalToProto(await this.approvals.getRecord(request.approvalId));
  }
}

/** A recorded refusal as the error the caller receives: the same error, naming its decision id. */
function recordedAs(err: unknown, decisionId: string, reason: DenialReason): unknown {
  if (err instanceof HcpError)
    return new HcpError(err.reason, err.message, { ...err.details, decisionId });
  if (err instanceof FailedPreconditionError) return err.recordedAs(decisionId, reason);
  if (err instanceof ApproverRequiredError || err instanceof NotFoundError)
    return err.recordedAs(decisionId);
  // An untyped fault stays one (INTERNAL); its refusal entry exists all the same.
  return err;
}
