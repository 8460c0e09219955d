import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';

/** One tool the server lists: its definition is whatever the test sets last. */
export interface MutableTool {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Tool['inputSchema'];
  /** When set, a call answers `structuredContent: { text }` too. */
  readonly outputSchema?: Tool['outputSchema'];
}

/** How to start the server. */
export interface MutableMcpServerOptions {
  readonly tools: readonly MutableTool[];
  /**
   * True (default): it declares `tools.listChanged` and sends `notifications/tools/list_changed`
   * on every change. False: it declares nothing and changes silently.
   */
  readonly announce?: boolean;
}

/** A call the server executed, as it received it. */
export interface ExecutedCall {
  readonly name: string;
  readonly args: Readonly<Record<string, unknown>>;
  /** The tool's description when it ran: tells which definition was executed. */
  readonly description: string;
}

/** A running stateful MCP server over Streamable HTTP on loopback. */
export interface MutableMcpServer {
  /** `http://127.0.0.1:<port>/mcp`. */
  readonly url: string;
  /** Every call executed, in order. */
  readonly executed: readonly ExecutedCall[];
  /** Sessions that opened the standalone GET stream (where unsolicited notifications go). */
  notificationStreams(): number;
  /** tools/list requests received so far. */
  listRequests(): number;
  /**
   * Replaces a tool's definition for every request from now on and, when announcing, sends
   * `notifications/tools/list_changed` to every session; resolves once the notification is written.
   */
  setTool(tool: MutableTool): Promise<void>;
  /**
   * From now on, a tool with an output schema answers structured content that no longer fits it
   * (the edge's SDK client rejects such a result with JSON-RPC -32602), silently.
   */
  breakResults(): void;
  /** Holds every tools/list answer until the returned function is called (a slow re-list). */
  holdListings(): () => void;
  close(): Promise<void>;
}

/**
 * A small real MCP server (the SDK's Server and stateful StreamableHTTPServerTransport, one
 * session per client) whose tool definitions a test changes at run time: the upstream that
 * "rug-pulls" a tool after it was pinned, announcing it or not. A call answers with the tool's
 * name and arguments.
 */
export async function startMutableMcpServer(
  options: MutableMcpServerOptions,
): Promise<MutableMcpServer> {
  const announce = options.announce ?? true;
  const tools = new Map(options.tools.map((t) => [t.name, t]));
  const executed: ExecutedCall[] = [];
  const sessions = new Map<string, { server: Server; transport: StreamableHTTPServerTransport }>();
  let streams = 0;
  let lists = 0;
  let broken = false;
  let hold: Promise<void> | undefined;

  const buildServer = (): Server => {
    const server = new Server(
      { name: 'hcp-test-mutable', version: '1.0.0' },
      { capabilities: { tools: announce ? { listChanged: true } : {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, async () => {
      lists++;
      if (hold !== undefined) await hold;
      return { tools: [...tools.values()].map((t) => ({ ...t })) };
    });
    server.setRequestHandler(CallToolRequestSchema, (request) => {
      const tool = tools.get(request.params.name);
      if (tool === undefined)
        return { isError: true, content: [{ type: 'text', text: 'unknown' }] };
      const args = request.params.arguments ?? {};
      executed.push({ name: tool.name, args, description: tool.description });
      const text = `${tool.name} ${JSON.stringify(args)}`;
      return {
        content: [{ type: 'text', text }],
        ...(tool.outputSchema === undefined
          ? {}
          : { structuredContent: broken ? { lines: [text] } : { text } }),
      };
    });
    return server;
  };

  const http: HttpServer = createServer((req, res) => {
    const sid = req.headers['mcp-session-id'];
    const known = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (req.url !== '/mcp' || (known === undefined && req.method !== 'POST')) {
      res.writeHead(404).end();
      return;
    }
    if (known !== undefined) {
      if (req.method === 'GET') streams++;
      known.transport.handleRequest(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
      return;
    }
    const server = buildServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { server, transport });
      },
    });
    server
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
    executed,
    notificationStreams: () => streams,
    listRequests: () => lists,
    setTool: async (tool) => {
      tools.set(tool.name, tool);
      if (!announce) return;
      await Promise.all([...sessions.values()].map((s) => s.server.sendToolListChanged()));
    },
    breakResults: () => {
      broken = true;
    },
    holdListings: () => {
      let release = (): void => undefined;
      hold = new Promise<void>((resolve) => {
        release = () => {
          hold = undefined;
          resolve();
        };
      });
      return release;
    },
    close: async () => {
      for (const { server } of sessions.values()) await server.close().catch(() => undefined);
      sessions.clear();
      await new Promise<void>((resolve, reject) => {
        http.closeAllConnections();
        http.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
