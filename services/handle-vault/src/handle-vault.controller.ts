import type { Metadata } from '@grpc/grpc-js';
import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { HandleRecord } from '@hcp/core';
import { core, handleToProto } from '@hcp/proto';
import { HandleService } from './handle.service';
import { HandleVaultExceptionFilter } from './handle-vault.exception-filter';
import {
  deleteInputFromWire,
  peekInputFromWire,
  putInputFromWire,
  readString,
  requestObject,
  resolveInputFromWire,
} from './handle-vault.mapping';

/**
 * Metadata key carrying the acting operator's principal id for ExpireNow. The
 * proto authorises ExpireNow by the caller's credential, not ownership; until
 * service authentication lands, the trusted caller (an operator tool, the
 * embedded composition root) sets it, as for grant-store's DecideApproval.
 */
export const OPERATOR_METADATA_KEY = 'hcp-principal-id';

/** gRPC surface of handle-vault: proto-loader objects to domain inputs and back; no rules here. */
@Controller()
@UseFilters(new HandleVaultExceptionFilter())
export class HandleVaultController {
  constructor(@Inject(HandleService) private readonly handles: HandleService) {}

  @GrpcMethod('HandleVault', 'Put')
  async put(request: unknown): Promise<{ handle: core.Handle }> {
    const handle = await this.handles.put(putInputFromWire(request));
    return { handle: handleToWire(handle) };
  }

  @GrpcMethod('HandleVault', 'Peek')
  async peek(request: unknown): Promise<{
    handle: core.Handle;
    preview: string;
    truncated: boolean;
    redactionCount: number;
  }> {
    const r = await this.handles.peek(peekInputFromWire(request));
    return {
      handle: handleToWire(r.handle),
      preview: r.preview,
      truncated: r.truncated,
      redactionCount: r.redactionCount,
    };
  }

  @GrpcMethod('HandleVault', 'ResolveForPipe')
  async resolveForPipe(request: unknown): Promise<{ handle: core.Handle; payload: Buffer }> {
    const r = await this.handles.resolveForPipe(resolveInputFromWire(request));
    return { handle: handleToWire(r.handle), payload: r.payload };
  }

  @GrpcMethod('HandleVault', 'Delete')
  async delete(request: unknown): Promise<Record<string, never>> {
    await this.handles.delete(deleteInputFromWire(request));
    return {};
  }

  @GrpcMethod('HandleVault', 'ExpireNow')
  async expireNow(request: unknown, metadata?: Metadata): Promise<{ handle: core.Handle }> {
    const req = requestObject(request);
    const handle = await this.handles.expireNow({
      operatorId: operatorOf(metadata),
      handleId: readString(req, 'handleId'),
      reason: readString(req, 'reason'),
    });
    return { handle: handleToWire(handle) };
  }
}

/** The operator from call metadata; '' when absent (the service refuses and audits that). */
export function operatorOf(metadata: Metadata | undefined): string {
  const value = metadata?.get(OPERATOR_METADATA_KEY)[0];
  return typeof value === 'string' ? value : '';
}

// handleToProto's ts-proto shape (Timestamp {seconds, nanos}, labels as an object) is also
// what proto-loader serialises.
function handleToWire(h: HandleRecord): core.Handle {
  return handleToProto(h);
}
