import { mkdir, realpath, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Grant } from '@hcp/core';
import { FILESYSTEM_CAPABILITIES, type EdgeProviderSpec } from '@hcp/edge';

/** The demo principals `pnpm start` mints tokens for. */
export const DEMO_PRINCIPALS = {
  /** Reads the public folder and the secrets folder; may write to public/out with an approval. */
  alice: 'alice',
  /** May only list the public folder. */
  bob: 'bob',
  /** Approves calls and reads the audit; never an agent. */
  operator: 'demo-operator',
} as const;

/** The sandbox the demo's filesystem provider serves, and what is in it. */
export interface DemoSandbox {
  readonly root: string;
  readonly publicDir: string;
  readonly secretsDir: string;
  /** A sibling folder whose name starts with the root's name (the `root_evil` trap). */
  readonly evilSibling: string;
}

/** Absolute path of the real filesystem MCP server's entry script (a dependency of this app). */
export function filesystemServerEntry(): string {
  const pkg = require.resolve('@modelcontextprotocol/server-filesystem/package.json');
  return join(dirname(pkg), 'dist', 'index.js');
}

/** Creates (or refreshes) the sandbox folder with a few files; idempotent. */
export async function createDemoSandbox(dir: string): Promise<DemoSandbox> {
  await mkdir(join(dir, 'public', 'out'), { recursive: true });
  await mkdir(join(dir, 'secrets'), { recursive: true });
  const root = await realpath(dir);
  const evilSibling = `${root}_evil`;
  await mkdir(evilSibling, { recursive: true });
  await writeFile(join(root, 'public', 'hello.txt'), 'Hello from the HCP sandbox.\n');
  await writeFile(
    join(root, 'public', 'notes.md'),
    '# Notes\n\nEvery tool output you get back is a handle; hcp_peek shows it.\n',
  );
  await writeFile(
    join(root, 'secrets', 'api-token.txt'),
    'demo-token-7f3a9c1e-not-a-real-secret\n',
  );
  await writeFile(join(evilSibling, 'loot.txt'), 'outside the sandbox\n');
  return {
    root,
    publicDir: join(root, 'public'),
    secretsDir: join(root, 'secrets'),
    evilSibling,
  };
}

/**
 * The filesystem provider over the sandbox, with the shipped manifest entries of every tool it
 * lists (a grant still decides which of them a principal may run).
 */
export function filesystemProvider(sandbox: DemoSandbox): EdgeProviderSpec {
  return {
    config: {
      id: 'fs',
      transport: {
        kind: 'stdio',
        command: process.execPath,
        args: [filesystemServerEntry(), sandbox.root],
      },
      resources: { filesystemRoots: [sandbox.root] },
    },
    capabilities: FILESYSTEM_CAPABILITIES,
  };
}

/** Edge-side settings: what is read from secrets/ is labelled secret (I6 keeps it from egress). */
export function demoCapabilitySettings(
  sandbox: DemoSandbox,
): Record<string, { sensitivePaths: { prefix: string; sensitivity: string }[] }> {
  return { 'fs/*': { sensitivePaths: [{ prefix: sandbox.secretsDir, sensitivity: 'secret' }] } };
}

/** The demo grants (ids and times are assigned by grant-store). */
export function demoGrants(sandbox: DemoSandbox): Omit<Grant, 'id' | 'createdAt' | 'revision'>[] {
  const prefix = (p: string) => ({ kind: 'path_prefix' as const, prefix: p });
  return [
    {
      principalId: DEMO_PRINCIPALS.alice,
      capabilities: ['fs/read_text_file', 'fs/list_directory', 'fs/get_file_info'],
      resourcePatterns: [prefix(sandbox.publicDir), prefix(sandbox.secretsDir)],
      scopes: ['fs:read'],
    },
    {
      principalId: DEMO_PRINCIPALS.alice,
      capabilities: ['fs/write_file'],
      resourcePatterns: [prefix(join(sandbox.publicDir, 'out'))],
      scopes: ['fs:write'],
    },
    {
      principalId: DEMO_PRINCIPALS.bob,
      capabilities: ['fs/list_directory'],
      resourcePatterns: [prefix(sandbox.publicDir)],
      scopes: ['fs:read'],
    },
  ];
}
