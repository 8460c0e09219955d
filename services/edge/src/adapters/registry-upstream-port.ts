import { assertNever, HcpError, type ReasonCode } from '@hcp/core';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamPort } from '../call/ports';
import type { ProviderRegistry } from '../providers/provider-registry';
import { UpstreamError, type UpstreamErrorKind } from '../providers/upstream-client';

/** Options of the upstream port. */
export interface RegistryUpstreamPortOptions {
  /** Bound of one tools/call; the provider connection's default (30 s) applies when absent. */
  readonly callTimeoutMs?: number;
}

/**
 * The reason a failed provider call is reported with. A provider that rejects the arguments is the
 * caller's fault (INPUT_INVALID); an oversized result is PAYLOAD_TOO_LARGE; everything else is the
 * provider being down, slow or broken (PROVIDER_UNAVAILABLE), never blamed on the decision point.
 */
export function reasonOfUpstreamFailure(kind: UpstreamErrorKind, rpcCode?: number): ReasonCode {
  switch (kind) {
    case 'rpc_error':
      return rpcCode === ErrorCode.InvalidParams ? 'INPUT_INVALID' : 'PROVIDER_UNAVAILABLE';
    case 'result_too_large':
      return 'PAYLOAD_TOO_LARGE';
    case 'start_failed':
    case 'timeout':
    case 'invalid_response':
    case 'unavailable':
    case 'aborted':
      return 'PROVIDER_UNAVAILABLE';
    default:
      return assertNever(kind, 'upstream error kind');
  }
}

/** Splits `provider/tool`; ids are built by capabilityIdOf and neither part contains '/'. */
function splitCapabilityId(capabilityId: string): { providerId: string; tool: string } {
  const slash = capabilityId.indexOf('/');
  const providerId = capabilityId.slice(0, slash);
  const tool = capabilityId.slice(slash + 1);
  if (slash <= 0 || tool === '' || tool.includes('/')) {
    throw new HcpError(
      'CAPABILITY_UNKNOWN',
      `${capabilityId} is not a provider/tool capability id`,
      {
        capabilityId: capabilityId.slice(0, 256),
      },
    );
  }
  return { providerId, tool };
}

/**
 * The upstream port over the ProviderRegistry: capability `provider/tool` is that provider's tool.
 * Failures become HcpError with a reason (the provider's own error text stays out of the message:
 * it is provider output, I1); an unregistered provider is CAPABILITY_UNKNOWN.
 */
export function registryUpstreamPort(
  registry: ProviderRegistry,
  opts: RegistryUpstreamPortOptions = {},
): UpstreamPort {
  return {
    async callTool(capabilityId, args) {
      const { providerId, tool } = splitCapabilityId(capabilityId);
      const client = registry.client(providerId);
      try {
        return await client.callTool(
          tool,
          args,
          opts.callTimeoutMs === undefined ? {} : { timeoutMs: opts.callTimeoutMs },
        );
      } catch (err: unknown) {
        if (!(err instanceof UpstreamError)) throw err;
        throw new HcpError(reasonOfUpstreamFailure(err.kind, err.extra.rpcCode), err.message, {
          providerId,
          upstreamError: err.kind,
          ...(err.extra.rpcCode === undefined ? {} : { rpcCode: err.extra.rpcCode }),
        });
      }
    },
  };
}
