import { HcpError } from '@hcp/core';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { CapabilitySpec } from '../edge';
import { createFilesystemSandbox, fetchProviderBin, fetchProviderRequired } from '../testing';
import { assertResourceArgumentsDeclared, pathOrUrlArguments } from './resource-arguments';
import { FETCH_CAPABILITIES, FILESYSTEM_CAPABILITIES } from './shipped-manifests';
import { UpstreamClient } from './upstream-client';
import type { ProviderConfig } from './provider-config';

const schema = (properties: Record<string, unknown>): Pick<Tool, 'inputSchema'> => ({
  inputSchema: { type: 'object', properties: properties as Record<string, object> },
});

describe('pathOrUrlArguments (names and formats only)', () => {
  it.each<[string, Record<string, unknown>]>([
    ['path', { type: 'string' }],
    ['paths', { type: 'array', items: { type: 'string' } }],
    ['file_path', { type: 'string' }],
    ['sourceDir', { type: 'string' }],
    ['source', { type: 'string' }],
    ['destination', { type: 'string' }],
    ['target', { type: 'string' }],
    ['url', { type: 'string' }],
    ['callbackUrl', { type: 'string' }],
    ['uri', { type: 'string' }],
    ['href', {}],
    ['location_of_thing', { type: 'string', format: 'uri' }],
    ['refs', { type: 'array', items: { type: 'string', format: 'uri-reference' } }],
  ])('takes %s for a path or URL', (name, node) => {
    expect(pathOrUrlArguments(schema({ [name]: node }))).toEqual([name]);
  });

  it.each<[string, Record<string, unknown>]>([
    ['pattern', { type: 'string' }],
    ['excludePatterns', { type: 'array', items: { type: 'string' } }],
    ['content', { type: 'string' }],
    ['pathological', { type: 'string' }],
    ['path', { type: 'number' }],
    ['paths', { type: 'array', items: { type: 'object' } }],
    ['max_length', { type: 'integer' }],
  ])('leaves %s alone', (name, node) => {
    expect(pathOrUrlArguments(schema({ [name]: node }))).toEqual([]);
  });
});

describe('assertResourceArgumentsDeclared (pin time)', () => {
  const moveFile = schema({ source: { type: 'string' }, destination: { type: 'string' } });
  const declared = (names: string[], nonResourceArguments?: string[]) => ({
    tool: 'move_file',
    resourceArguments: names.map((name) => ({ name })),
    ...(nonResourceArguments === undefined ? {} : { nonResourceArguments }),
  });

  it('refuses a manifest entry that leaves one undeclared, naming provider, tool and argument', () => {
    let err: unknown;
    try {
      assertResourceArgumentsDeclared('fs', declared(['source']), moveFile);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HcpError);
    expect(err).toMatchObject({
      reason: 'INPUT_INVALID',
      details: { provider: 'fs', tool: 'move_file', argument: 'destination' },
    });
    expect((err as Error).message).toContain('"destination"');
  });

  it('accepts the entry declaring both', () => {
    expect(() =>
      assertResourceArgumentsDeclared('fs', declared(['source', 'destination']), moveFile),
    ).not.toThrow();
  });

  it('accepts an argument the operator names as not a resource', () => {
    expect(() =>
      assertResourceArgumentsDeclared('fs', declared(['source'], ['destination']), moveFile),
    ).not.toThrow();
  });
});

/** Lists a real server's tools over its real transport. */
async function listTools(config: ProviderConfig): Promise<Tool[]> {
  const client = await UpstreamClient.connect(config, { connectTimeoutMs: 30_000 });
  try {
    return await client.listTools();
  } finally {
    await client.close();
  }
}

/** Every listed tool has an entry, every entry a listed tool, and no path/URL argument is left out. */
function expectCovers(providerId: string, specs: readonly CapabilitySpec[], tools: Tool[]): void {
  expect(specs.map((s) => s.tool).sort()).toEqual(tools.map((t) => t.name).sort());
  for (const spec of specs) {
    const tool = tools.find((t) => t.name === spec.tool)!;
    expect(() => assertResourceArgumentsDeclared(providerId, spec, tool)).not.toThrow();
    const properties = (tool.inputSchema.properties ?? {}) as Record<string, { type?: unknown }>;
    for (const arg of spec.resourceArguments) {
      // Declared arguments exist, and `many` exactly for the array ones.
      expect(properties[arg.name]).toBeDefined();
      expect(arg.many === true).toBe(properties[arg.name]?.type === 'array');
    }
  }
}

describe('the shipped manifests against the real servers', () => {
  it('covers every tool and every path argument of @modelcontextprotocol/server-filesystem', async () => {
    const sandbox = await createFilesystemSandbox();
    try {
      const tools = await listTools(sandbox.config);
      expect(tools.length).toBeGreaterThanOrEqual(14);
      expectCovers('fs', FILESYSTEM_CAPABILITIES, tools);
      const move = FILESYSTEM_CAPABILITIES.find((c) => c.tool === 'move_file')!;
      expect(move.resourceArguments).toEqual([
        expect.objectContaining({ name: 'source', role: 'delete', scopes: ['fs:delete'] }),
        expect.objectContaining({ name: 'destination', role: 'write' }),
      ]);
    } finally {
      await sandbox.cleanup();
    }
  }, 60_000);

  const itFetch = fetchProviderRequired('the fetch manifest check') ? it : it.skip;
  itFetch(
    'covers every tool and the url argument of mcp-server-fetch',
    async () => {
      const tools = await listTools({
        id: 'fetch',
        transport: { kind: 'stdio', command: fetchProviderBin(), args: [] },
      });
      expectCovers('fetch', FETCH_CAPABILITIES, tools);
    },
    60_000,
  );
});
