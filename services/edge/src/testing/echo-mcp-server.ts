import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ErrorCode, McpError, type ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** The default description of the `echo` tool. */
export const ECHO_DESCRIPTION = 'Echoes its text argument back.';

/**
 * What the `echo` tool advertises besides its name: tests change it to play an upstream that
 * alters a tool after it was pinned (description, an extra parameter, annotations).
 */
export interface EchoDefinition {
  readonly description: string;
  /** Name of an extra optional string parameter the tool suddenly accepts (and ignores). */
  readonly extraParameter?: string;
  readonly annotations?: ToolAnnotations;
}

/** How to start the server; the default is the honest echo tool. */
export interface EchoMcpServerOptions {
  /** The `echo` description from the start (an upstream that is hostile from day one). */
  readonly echoDescription?: string;
}

/** A running in-process MCP server over Streamable HTTP on loopback. */
export interface EchoMcpServer {
  /** `http://127.0.0.1:<port>/mcp`. */
  readonly url: string;
  /** Changes the `echo` description served from the next request on (a "rug pull"). */
  setEchoDescription(description: string): void;
  /** Changes the whole `echo` definition served from the next request on. */
  setEchoDefinition(definition: EchoDefinition): void;
  close(): Promise<void>;
}

/**
 * A tiny real MCP server (the SDK's McpServer + StreamableHTTPServerTransport,
 * stateless: a fresh server per request) so the http transport is tested
 * against the real protocol, not a mock. Tools:
 * - `echo {text}` -> text content;
 * - `slow {ms}` -> answers after `ms` (timeout tests);
 * - `big {bytes}` -> a text of that many bytes (size-bound tests);
 * - `fail` -> a JSON-RPC error. McpServer turns every thrown error into an
 *   `isError` result except UrlElicitationRequired (-32042), which it
 *   rethrows, so that code is how a real JSON-RPC error is produced here.
 */
export async function startEchoMcpServer(
  options: EchoMcpServerOptions = {},
): Promise<EchoMcpServer> {
  let echo: EchoDefinition = { description: options.echoDescription ?? ECHO_DESCRIPTION };

  const buildServer = (): McpServer => {
    const mcp = new McpServer({ name: 'hcp-test-echo', version: '1.0.0' });
    const extra = echo.extraParameter;
    mcp.registerTool(
      'echo',
      {
        description: echo.description,
        inputSchema:
          extra === undefined
            ? { text: z.string() }
            : { text: z.string(), [extra]: z.string().optional() },
        ...(echo.annotations === undefined ? {} : { annotations: echo.annotations }),
      },
      ({ text }) => ({ content: [{ type: 'text', text }] }),
    );
    mcp.registerTool(
      'slow',
      { description: 'Answers after a delay.', inputSchema: { ms: z.number().int().min(0) } },
      async ({ ms }, extra) => {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          extra.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        return { content: [{ type: 'text', text: 'done' }] };
      },
    );
    mcp.registerTool(
      'big',
      { description: 'Returns a large text.', inputSchema: { bytes: z.number().int().min(0) } },
      ({ bytes }) => ({ content: [{ type: 'text', text: 'x'.repeat(bytes) }] }),
    );
    mcp.registerTool('fail', { description: 'Always fails.' }, () => {
      throw new McpError(ErrorCode.UrlElicitationRequired, 'fail tool always fails');
    });
    return mcp;
  };

  const http: Server = createServer((req, res) => {
    if (req.url !== '/mcp' || req.method !== 'POST') {
      // Stateless: no standalone GET stream and no session to DELETE.
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    const mcp = buildServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    mcp
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
  });

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    setEchoDescription: (description) => {
      echo = { description };
    },
    setEchoDefinition: (definition) => {
      echo = definition;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        http.closeAllConnections();
        http.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
