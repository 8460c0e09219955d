import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/**
 * `pnpm agent`: a minimal MCP agent for trying the edge by hand — the SDK's real Client over
 * Streamable HTTP, one session per command.
 *
 *   pnpm -s agent tools
 *   pnpm -s agent call <tool> '<json arguments>' [--approval apr_...]
 *   pnpm -s agent peek <handle>
 *
 * HCP_TOKEN (or --token) is the bearer token; HCP_EDGE_URL (or --url) the edge, default
 * http://127.0.0.1:8080/mcp. Exit codes: 0 ok, 1 refused by HCP (the JSON-RPC error is printed
 * with its reason code and decision id), 2 usage or connection errors.
 */
const USAGE = `usage: agent tools | call <tool> '<json>' [--approval <id>] | peek <handle> [--max-bytes N]
  --url <edge mcp url>   (HCP_EDGE_URL, default http://127.0.0.1:8080/mcp)
  --token <jwt>          (HCP_TOKEN)`;

/** Runs one agent command; returns the process exit code. */
export async function runAgent(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        approval: { type: 'string' },
        'max-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help === true || command === undefined) {
    console.log(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  const token = values.token ?? process.env.HCP_TOKEN;
  if (token === undefined || token === '') {
    console.error('no token: set HCP_TOKEN or pass --token (pnpm start prints the demo tokens)');
    return 2;
  }
  const url = values.url ?? process.env.HCP_EDGE_URL ?? 'http://127.0.0.1:8080/mcp';

  let request: (client: Client) => Promise<unknown>;
  switch (command) {
    case 'tools':
      request = async (client) => {
        const { tools } = await client.listTools();
        return tools.map((t) => ({ name: t.name, description: t.description }));
      };
      break;
    case 'call': {
      const [tool, json] = rest;
      if (tool === undefined) {
        console.error(USAGE);
        return 2;
      }
      let args: Record<string, unknown>;
      try {
        const value: unknown = JSON.parse(json ?? '{}');
        if (typeof value !== 'object' || value === null || Array.isArray(value))
          throw new Error('arguments must be a JSON object');
        args = value as Record<string, unknown>;
      } catch (err) {
        console.error(`bad arguments: ${(err as Error).message}`);
        return 2;
      }
      const approval = values.approval;
      request = (client) =>
        client.callTool({
          name: tool,
          arguments: args,
          ...(approval === undefined ? {} : { _meta: { 'hcp/approvalId': approval } }),
        });
      break;
    }
    case 'peek': {
      const [handle] = rest;
      if (handle === undefined) {
        console.error(USAGE);
        return 2;
      }
      const maxBytes = values['max-bytes'] === undefined ? undefined : Number(values['max-bytes']);
      request = (client) =>
        client.callTool({
          name: 'hcp_peek',
          arguments: { handle, ...(maxBytes === undefined ? {} : { maxBytes }) },
        });
      break;
    }
    default:
      console.error(`unknown command ${command}\n${USAGE}`);
      return 2;
  }

  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'hcp-agent-cli', version: '0.1.0' });
  try {
    await client.connect(transport);
  } catch (err) {
    console.error(`cannot connect to ${url}: ${(err as Error).message}`);
    return 2;
  }
  try {
    const result = await request(client);
    console.log(JSON.stringify(summarize(result), null, 2));
    return isToolError(result) ? 1 : 0;
  } catch (err) {
    if (err instanceof McpError) {
      console.log(
        JSON.stringify(
          { error: { code: err.code, message: err.message, data: err.data } },
          null,
          2,
        ),
      );
      return 1;
    }
    console.error((err as Error).message);
    return 2;
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
}

function isToolError(result: unknown): boolean {
  return (result as Partial<CallToolResult> | undefined)?.isError === true;
}

/** A tool result with structured content is shown as that; text content as text. */
function summarize(result: unknown): unknown {
  const r = result as Partial<CallToolResult>;
  if (r === null || typeof r !== 'object' || !('content' in r)) return result;
  if (r.structuredContent !== undefined && !('labels' in r.structuredContent))
    return r.structuredContent;
  const text = (r.content ?? [])
    .map((c) => (c.type === 'text' ? c.text : `[${c.type}]`))
    .join('\n');
  return r.structuredContent === undefined ? { text } : { ...r.structuredContent, text };
}

if (require.main === module) {
  void runAgent(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
