import type { Metadata } from '@grpc/grpc-js';
import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { handleToProto, putRequestFromProto, type vault } from '@hcp/proto';
import { HandleService } from './handle.service';
import { HandleVaultExceptionFilter } from './handle-vault.exception-filter';

/**
 * Metadata key carrying the acting operator's principal id for ExpireNow. The
 * proto authorises ExpireNow by the caller's credential, not ownership; until
 * service authentication lands, the trusted caller (an operator tool, the
 * embedded composition root) sets it, as for grant-store's DecideApproval.
 */
export const OPERATOR_METADATA_KEY = 'hcp-principal-id';

/**
 * gRPC surface of handle-vault: generated messages in, HandleService, generated messages out.
 * Requests whose fields already are the service's input go to it as they are; HandleService
 * checks (and audits) their content.
 */
@Controller()
@UseFilters(new HandleVaultExceptionFilter())
export class HandleVaultController {
  constructor(@Inject(HandleService) private readonly handles: HandleService) {}

  @GrpcMethod('HandleVault', 'Put')
  async put(request: vault.PutRequest): Promise<vault.PutResponse> {
    const handle = await this.handles.put(putRequestFromProto(request));
    return { handle: handleToProto(handle) };
  }

  @GrpcMethod('HandleVault', 'Peek')
  async peek(request: vault.PeekRequest): Promise<vault.PeekResponse> {
    const r = await this.handles.peek(request);
    return {
      handle: handleToProto(r.handle),
      preview: r.preview,
      truncated: r.truncated,
      redactionCount: r.redactionCount,
    };
  }

  @GrpcMethod('HandleVault', 'DescribeHandle')
  async describeHandle(
    request: vault.DescribeHandleRequest,
  ): Promise<vault.DescribeHandleResponse> {
    return { handle: handleToProto(await this.handles.describe(request)) };
  }

  @GrpcMethod('HandleVault', 'ResolveForPipe')
  async resolveForPipe(
    request: vault.ResolveForPipeRequest,
  ): Promise<vault.ResolveForPipeResponse> {
    const r = await this.handles.resolveForPipe(request);
    return { handle: handleToProto(r.handle), payload: r.payload };
  }

  @GrpcMethod('HandleVault', 'Delete')
  async delete(request: vault.DeleteRequest): Promise<vault.DeleteResponse> {
    await this.handles.delete(request);
    return {};
  }

  @GrpcMethod('HandleVault', 'ExpireNow')
  async expireNow(
    request: vault.ExpireNowRequest,
    metadata?: Metadata,
  ): Promise<vault.ExpireNowResponse> {
    const handle = await this.handles.expireNow({
      operatorId: operatorOf(metadata),
      handleId: request.handleId,
      reason: request.reason,
    });
    return { handle: handleToProto(handle) };
  }
}

/** The operator from call metadata; '' when absent (the service refuses and audits that). */
export function operatorOf(metadata: Metadata | undefined): string {
  const value = metadata?.get(OPERATOR_METADATA_KEY)[0];
  return typeof value === 'string' ? value : '';
}
