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
  approvalRecordToWire,
  approvalToWire,
  capabilityFromWire,
  capabilityToWire,
  createGrantInputFromWire,
  decideApprovalInputFromWire,
  grantToWire,
  listApprovalsInputFromWire,
  listGrantsInputFromWire,
  readString,
  requestApprovalInputFromWire,
  requestObject,
  type WireApproval,
  type WireApprovalRecord,
  type WireCapability,
  type WireGrant,
} from './grant-store.mapping';
import { GRANT_STORE_APPROVER_AUTH, GRANT_STORE_AUDIT } from './grant-store.tokens';

/** gRPC surface of grant-store: maps proto-loader objects to domain inputs and back; no rules here. */
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
  async createGrant(request: unknown): Promise<{ grant: WireGrant }> {
    const grant = await this.grants.create(createGrantInputFromWire(request));
    return { grant: grantToWire(grant) };
  }

  @GrpcMethod('GrantStore', 'RevokeGrant')
  async revokeGrant(request: unknown): Promise<{ grant: WireGrant }> {
    const req = requestObject(request);
    const grant = await this.grants.revoke(readString(req, 'grantId'), readString(req, 'reason'));
    return { grant: grantToWire(grant) };
  }

  @GrpcMethod('GrantStore', 'GetGrant')
  async getGrant(request: unknown): Promise<{ grant: WireGrant }> {
    const grant = await this.grants.get(readString(requestObject(request), 'grantId'));
    return { grant: grantToWire(grant) };
  }

  @GrpcMethod('GrantStore', 'ListGrants')
  async listGrants(request: unknown): Promise<{ grants: WireGrant[]; nextPageToken: string }> {
    const page = await this.grants.list(listGrantsInputFromWire(request));
    return { grants: page.grants.map(grantToWire), nextPageToken: page.nextPageToken };
  }

  @GrpcMethod('GrantStore', 'GetPrincipalGrants')
  async getPrincipalGrants(request: unknown): Promise<{ grants: WireGrant[]; revision: number }> {
    const snapshot = await this.grants.principalSnapshot(
      readString(requestObject(request), 'principalId'),
    );
    return { grants: snapshot.grants.map(grantToWire), revision: snapshot.revision };
  }

  @GrpcMethod('GrantStore', 'PutCapability')
  async putCapability(
    request: unknown,
  ): Promise<{ capability: WireCapability; manifestRevision: number }> {
    const req = requestObject(request);
    const result = await this.capabilities.put(capabilityFromWire(req['capability'], 'capability'));
    return {
      capability: capabilityToWire(result.capability),
      manifestRevision: result.manifestRevision,
    };
  }

  @GrpcMethod('GrantStore', 'GetCapability')
  async getCapability(request: unknown): Promise<{ capability: WireCapability }> {
    const capability = await this.capabilities.get(
      readString(requestObject(request), 'capabilityId'),
    );
    return { capability: capabilityToWire(capability) };
  }

  @GrpcMethod('GrantStore', 'ListCapabilities')
  async listCapabilities(
    request: unknown,
  ): Promise<{ capabilities: WireCapability[]; manifestRevision: number }> {
    const snapshot = await this.capabilities.list(readString(requestObject(request), 'provider'));
    return {
      capabilities: snapshot.capabilities.map(capabilityToWire),
      manifestRevision: snapshot.revision,
    };
  }

  @GrpcMethod('GrantStore', 'RequestApproval')
  async requestApproval(request: unknown): Promise<{ approval: WireApproval }> {
    const approval = await this.approvals.request(requestApprovalInputFromWire(request));
    return { approval: approvalToWire(approval) };
  }

  @GrpcMethod('GrantStore', 'DecideApproval')
  async decideApproval(request: unknown, metadata?: Metadata): Promise<{ approval: WireApproval }> {
    // Authenticate before reading the body, so an unauthenticated caller learns nothing from it.
    let approver: Principal | undefined;
    let approvalId: string | undefined;
    try {
      approver = await approverOf(this.approverAuth, metadata, 'DecideApproval');
      const input = decideApprovalInputFromWire(request);
      approvalId = input.approvalId;
      const approval = await this.approvals.decide(input.approvalId, input.verdict, approver.id);
      return { approval: approvalToWire(approval) };
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
    request: unknown,
    metadata?: Metadata,
  ): Promise<{ approvals: WireApprovalRecord[]; nextPageToken: string }> {
    // Every principal's pending calls are an operator's view, not an agent's.
    await approverOf(this.approverAuth, metadata, 'ListApprovals');
    const page = await this.approvals.listPending(listApprovalsInputFromWire(request));
    return {
      approvals: page.approvals.map(approvalRecordToWire),
      nextPageToken: page.nextPageToken,
    };
  }

  @GrpcMethod('GrantStore', 'ConsumeApproval')
  async consumeApproval(request: unknown): Promise<{ approval: WireApproval }> {
    const req = requestObject(request);
    const approval = await this.approvals.consume(
      readString(req, 'approvalId'),
      readString(req, 'principalId'),
      readString(req, 'bindingDigest'),
    );
    return { approval: approvalToWire(approval) };
  }

  @GrpcMethod('GrantStore', 'GetApproval')
  async getApproval(request: unknown): Promise<WireApprovalRecord> {
    const record = await this.approvals.getRecord(readString(requestObject(request), 'approvalId'));
    return approvalRecordToWire(record);
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
