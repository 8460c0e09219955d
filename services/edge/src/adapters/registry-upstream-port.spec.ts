import { HcpError } from '@hcp/core';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { ProviderRegistry } from '../providers/provider-registry';
import { startEchoMcpServer, type EchoMcpServer } from '../testing/echo-mcp-server';
import { reasonOfUpstreamFailure, registryUpstreamPort } from './registry-upstream-port';

async function hcpErrorOf(p: Promise<unknown>): Promise<HcpError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HcpError);
  return err as HcpError;
}

describe('registryUpstreamPort against a real MCP server', () => {
  let server: EchoMcpServer;
  const registry = new ProviderRegistry({ maxResultBytes: 10_000 });

  beforeAll(async () => {
    server = await startEchoMcpServer();
    await registry.register({ id: 'echo', transport: { kind: 'http', url: server.url } });
  });
  afterAll(async () => {
    await registry.closeAll();
    await server.close();
  });

  it('calls the tool of `provider/tool` on that provider', async () => {
    const port = registryUpstreamPort(registry);
    expect(await port.callTool('echo/echo', { text: 'ping' })).toMatchObject({
      isError: false,
      content: [{ type: 'text', text: 'ping' }],
    });
  });

  it('refuses a capability of an unregistered provider as CAPABILITY_UNKNOWN', async () => {
    const port = registryUpstreamPort(registry);
    expect((await hcpErrorOf(port.callTool('ghost/echo', { text: 'x' }))).reason).toBe(
      'CAPABILITY_UNKNOWN',
    );
  });

  it.each(['echo', '/echo', 'echo/', 'echo/a/b'])(
    'refuses the malformed capability id %p as CAPABILITY_UNKNOWN',
    async (id) => {
      const port = registryUpstreamPort(registry);
      expect((await hcpErrorOf(port.callTool(id, {}))).reason).toBe('CAPABILITY_UNKNOWN');
    },
  );

  it('reports a provider JSON-RPC error as PROVIDER_UNAVAILABLE without its text', async () => {
    const err = await hcpErrorOf(registryUpstreamPort(registry).callTool('echo/fail', {}));
    expect(err.reason).toBe('PROVIDER_UNAVAILABLE');
    expect(err.details).toMatchObject({ providerId: 'echo', upstreamError: 'rpc_error' });
    expect(err.message).not.toContain('fail tool always fails');
  });

  it('bounds a call by its timeout (PROVIDER_UNAVAILABLE), and the next call still works', async () => {
    const port = registryUpstreamPort(registry, { callTimeoutMs: 200 });
    const err = await hcpErrorOf(port.callTool('echo/slow', { ms: 5000 }));
    expect(err).toMatchObject({
      reason: 'PROVIDER_UNAVAILABLE',
      details: { upstreamError: 'timeout' },
    });
    expect((await port.callTool('echo/echo', { text: 'ok' })).isError).toBe(false);
  });

  it('refuses an oversized result as PAYLOAD_TOO_LARGE', async () => {
    const port = registryUpstreamPort(registry);
    expect((await hcpErrorOf(port.callTool('echo/big', { bytes: 50_000 }))).reason).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    expect((await port.callTool('echo/big', { bytes: 100 })).isError).toBe(false);
  });
});

describe('reasonOfUpstreamFailure', () => {
  it('blames the arguments only when the provider says they are invalid', () => {
    expect(reasonOfUpstreamFailure('rpc_error', ErrorCode.InvalidParams)).toBe('INPUT_INVALID');
    expect(reasonOfUpstreamFailure('rpc_error', ErrorCode.InternalError)).toBe(
      'PROVIDER_UNAVAILABLE',
    );
    expect(reasonOfUpstreamFailure('unavailable')).toBe('PROVIDER_UNAVAILABLE');
    expect(reasonOfUpstreamFailure('start_failed')).toBe('PROVIDER_UNAVAILABLE');
  });
});
