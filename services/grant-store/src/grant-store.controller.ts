import type { Metadata } from '@grpc/grpc-js';
import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { HcpError } from '@hcp/core';
import { ApprovalService } from './approval.service';
import { CapabilityService } from './capability.service';
import { GrantService } from './grant.service';
import { GrantStoreExceptionFilter } from './grant-store.exception-filter';
import {
  approvalToWire,
  capabilityFromWire,
  capabilityToWire,
  createGrantInputFromWire,
  decideApprovalInputFromWire,
  grantToWire,
  listGrantsInputFromWire,
  readString,
  requestApprovalInputFromWire,
  requestObject,
  type WireApproval,
  type WireCapability,
  type WireGrant,
} from './grant-store.mapping';

/**
 * Metadata key carrying the acting operator's principal id for DecideApproval.
 * The proto says the operator comes from the caller's credential, never a
 * request field; until service authentication lands, the trusted caller (an
 * operator tool or the embedded composition root) sets it.
 */
export const OPERATOR_METADATA_KEY = 'hcp-principal-id';

/** gRPC surface of grant-store: maps proto-loader objects to domain inputs and back; no rules here. */
@Controller()
@UseFilters(new GrantStoreExceptionFilter())
export class GrantStoreController {
  constructor(
    @Inject(GrantService) private readonly grants: GrantService,
    @Inject(CapabilityService) private readonly capabilities: CapabilityService,
    @Inject(ApprovalService) private readonly approvals: ApprovalService,
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
    const { approvalId, verdict } = decideApprovalInputFromWire(request);
    const approval = await this.approvals.decide(approvalId, verdict, operatorOf(metadata));
    return { approval: approvalToWire(approval) };
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
  async getApproval(request: unknown): Promise<{ approval: WireApproval }> {
    const approval = await this.approvals.get(readString(requestObject(request), 'approvalId'));
    return { approval: approvalToWire(approval) };
  }
}

/** The acting operator from call metadata; without one nobody can decide an approval. */
export function operatorOf(metadata: Metadata | undefined): string {
  const value = metadata?.get(OPERATOR_METADATA_KEY)[0];
  if (typeof value !== 'string' || value === '')
    throw new HcpError(
      'PRINCIPAL_UNAUTHENTICATED',
      `DecideApproval needs the operator's principal id in metadata ${OPERATOR_METADATA_KEY}`,
    );
  return value;
}
