import {
  ECHO_DESCRIPTION,
  startEchoMcpServer,
  type EchoMcpServer,
} from '../testing/echo-mcp-server';
import type { ProviderConfig } from './provider-config';
import { UpstreamClient, UpstreamError } from './upstream-client';

describe('UpstreamClient over Streamable HTTP against an in-process SDK McpServer', () => {
  let server: EchoMcpServer;
  let config: ProviderConfig;
  let client: UpstreamClient | undefined;

  beforeAll(async () => {
    server = await startEchoMcpServer();
    config = { id: 'echo', transport: { kind: 'http', url: server.url } };
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
  });
  afterAll(async () => {
    await server.close();
  });

  it('connects, lists every tool and calls echo', async () => {
    client = await UpstreamClient.connect(config);
    expect(client.pid).toBeNull();
    const tools = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['big', 'echo', 'fail', 'slow']);
    expect(tools.find((t) => t.name === 'echo')?.description).toBe(ECHO_DESCRIPTION);
    const result = await client.callTool('echo', { text: 'ping' });
    expect(result).toMatchObject({ isError: false, content: [{ type: 'text', text: 'ping' }] });
  });

  it('a call past its timeout is a typed timeout, and the connection still works', async () => {
    client = await UpstreamClient.connect(config);
    await expect(client.callTool('slow', { ms: 5000 }, { timeoutMs: 200 })).rejects.toMatchObject({
      name: 'UpstreamError',
      kind: 'timeout',
      operation: 'tools/call',
    });
    expect((await client.callTool('echo', { text: 'still here' })).isError).toBe(false);
  });

  it("the caller's abort signal ends a call as aborted", async () => {
    client = await UpstreamClient.connect(config);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      client.callTool('slow', { ms: 5000 }, { signal: controller.signal }),
    ).rejects.toMatchObject({ kind: 'aborted' });
  });

  it('an oversized response body is cut off as result_too_large', async () => {
    client = await UpstreamClient.connect(config, { maxResultBytes: 10_000 });
    // Cut off while streaming by the bounded fetch, not after buffering the whole body.
    await expect(client.callTool('big', { bytes: 50_000 })).rejects.toMatchObject({
      kind: 'result_too_large',
      message: expect.stringContaining('response body exceeds 10000 bytes') as string,
    });
    expect((await client.callTool('big', { bytes: 1000 })).isError).toBe(false);
  });

  it('a JSON-RPC error from the upstream is rpc_error, its text kept out of the message', async () => {
    client = await UpstreamClient.connect(config);
    const err = await client.callTool('fail', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    const e = err as UpstreamError;
    expect(e.kind).toBe('rpc_error');
    expect(e.extra.rpcCode).toBe(-32042);
    expect(e.extra.upstreamMessage).toContain('fail tool always fails');
    expect(e.message).not.toContain('fail tool always fails');
  });

  it('an unknown tool is an isError result from the SDK server (not a transport failure)', async () => {
    client = await UpstreamClient.connect(config);
    expect((await client.callTool('no_such_tool', {})).isError).toBe(true);
  });

  it('an unreachable URL is start_failed', async () => {
    const closed = await startEchoMcpServer();
    const url = closed.url;
    await closed.close();
    await expect(
      UpstreamClient.connect(
        { id: 'gone', transport: { kind: 'http', url } },
        { connectTimeoutMs: 2000 },
      ),
    ).rejects.toMatchObject({ kind: 'start_failed', operation: 'connect' });
  });

  it('a URL that is not an MCP endpoint is start_failed', async () => {
    await expect(
      UpstreamClient.connect({
        id: 'wrong',
        transport: { kind: 'http', url: server.url.replace('/mcp', '/other') },
      }),
    ).rejects.toMatchObject({ kind: 'start_failed' });
  });
});
