import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { DemoSandbox } from './demo-world';

/**
 * The printed example, run once by `pnpm start` itself with the SDK's real MCP client: list the
 * tools, read a sandbox file into a handle, peek it, and be denied a `../` escape. Prints what
 * happened; resolves false when anything did not behave as the example says (the --once smoke
 * test in CI fails on that).
 */
export async function runDemoAgent(input: {
  readonly url: string;
  readonly token: string;
  readonly sandbox: DemoSandbox;
}): Promise<boolean> {
  const transport = new StreamableHTTPClientTransport(new URL(input.url), {
    requestInit: { headers: { authorization: `Bearer ${input.token}` } },
  });
  const client = new Client({ name: 'hcp-demo-agent', version: '0.1.0' });
  let ok = true;
  const expect = (cond: boolean, what: string) => {
    if (!cond) {
      ok = false;
      console.log(`  UNEXPECTED: ${what}`);
    }
  };
  console.log('\nthe example, run once as alice:');
  try {
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    console.log(`  tools/list            -> ${tools.join(', ')}`);
    expect(tools.includes('fs.read_text_file'), 'fs.read_text_file is listed');
    expect(!tools.includes('fs.move_file'), 'fs.move_file (no manifest entry) is hidden');

    const read = await client.callTool({
      name: 'fs.read_text_file',
      arguments: { path: `${input.sandbox.publicDir}/hello.txt` },
    });
    const handle = (read.structuredContent as { handle?: string } | undefined)?.handle;
    console.log(`  read public/hello.txt -> handle ${handle ?? '(none)'}`);
    expect(handle !== undefined && handle.startsWith('hdl_'), 'the read returns a handle');
    if (handle !== undefined) {
      const peek = await client.callTool({ name: 'hcp_peek', arguments: { handle } });
      const text = (peek.content as { type: string; text?: string }[])[0]?.text ?? '';
      console.log(`  hcp_peek              -> ${JSON.stringify(text.trim())}`);
      expect(text.includes('Hello from the HCP sandbox'), 'the peek shows the file');
    }

    const escape = `${input.sandbox.publicDir}/../../../../../../../../etc/passwd`;
    const denied = await client
      .callTool({ name: 'fs.read_text_file', arguments: { path: escape } })
      .then(() => undefined)
      .catch((err: unknown) => err);
    const data = denied instanceof McpError ? (denied.data as Record<string, unknown>) : undefined;
    console.log(
      `  read public/../../../../../../../../etc/passwd -> ${data === undefined ? 'NOT DENIED' : `denied ${String(data['reason'])} (decision ${String(data['decisionId'])})`}`,
    );
    expect(data !== undefined, 'the ../ escape is denied');
  } catch (err) {
    ok = false;
    console.log(`  UNEXPECTED: ${(err as Error).message}`);
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
  return ok;
}
