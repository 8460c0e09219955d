import { status } from '@grpc/grpc-js';
import { HcpError } from '@hcp/core';
import { handleFromProto, type core, type vault } from '@hcp/proto';
import type { VaultPort } from '../call/ports';
import { grpcCodeOf, unary, type GrpcAdapterOptions } from './grpc-call';

/** Options of the vault port. */
export interface GrpcVaultPortOptions extends GrpcAdapterOptions {
  /** Lifetime asked for each stored output; the vault's default (and cap) applies when absent. */
  readonly handleTtlMs?: number;
}

/** Every vault response names its handle; one without is a broken server, not a refusal. */
function handleOf(handle: core.Handle | undefined, rpc: string) {
  if (handle === undefined) throw new Error(`${rpc}: the vault answered without a handle`);
  return handleFromProto(handle);
}

/**
 * The vault port over handle-vault's gRPC API. The vault checks ownership on every read (I4) and
 * audits peeks and resolves itself; this adapter only translates.
 */
export function grpcVaultPort(
  client: vault.HandleVaultClient,
  opts: GrpcVaultPortOptions = {},
): VaultPort {
  const ttl =
    opts.handleTtlMs === undefined
      ? undefined
      : {
          seconds: Math.floor(opts.handleTtlMs / 1000),
          nanos: (opts.handleTtlMs % 1000) * 1_000_000,
        };
  return {
    async put(input) {
      const res = await unary(
        client.put.bind(client),
        {
          ownerPrincipalId: input.ownerPrincipalId,
          producingCapability: input.producingCapability,
          labels: { ...input.labels },
          ttl,
          payload: Buffer.from(input.payload),
        },
        opts,
      );
      return handleOf(res.handle, 'Put');
    },

    async peek(input) {
      const res = await unary(
        client.peek.bind(client),
        { principalId: input.principalId, handleId: input.handleId, maxBytes: input.maxBytes },
        opts,
      );
      return {
        handle: handleOf(res.handle, 'Peek'),
        preview: res.preview,
        truncated: res.truncated,
      };
    },

    // Unknown and foreign handles are one answer from the vault (I4); the port reads both as
    // "no such handle", and the decision point then says HANDLE_NOT_OWNED.
    async describe(input) {
      try {
        const res = await unary(
          client.describeHandle.bind(client),
          { principalId: input.principalId, handleId: input.handleId },
          opts,
        );
        return handleOf(res.handle, 'DescribeHandle');
      } catch (err: unknown) {
        if (err instanceof HcpError && err.reason === 'HANDLE_NOT_OWNED') return undefined;
        if (!(err instanceof HcpError) && grpcCodeOf(err) === status.NOT_FOUND) return undefined;
        throw err;
      }
    },

    async resolveForPipe(input) {
      const res = await unary(
        client.resolveForPipe.bind(client),
        {
          principalId: input.principalId,
          handleId: input.handleId,
          decisionId: input.decisionId,
        },
        opts,
      );
      return {
        handle: handleOf(res.handle, 'ResolveForPipe'),
        payload: new Uint8Array(res.payload),
      };
    },
  };
}
