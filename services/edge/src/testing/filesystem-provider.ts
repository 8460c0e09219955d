import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ProviderConfig } from '../providers/provider-config';

/**
 * Absolute path of the real `@modelcontextprotocol/server-filesystem` entry
 * script, resolved through the package (not the .bin shim) so it runs as
 * `node <entry>` on any machine where the dev dependency is installed.
 */
export function filesystemServerEntry(): string {
  const pkg = require.resolve('@modelcontextprotocol/server-filesystem/package.json');
  return join(dirname(pkg), 'dist', 'index.js');
}

/** A fresh sandbox folder and the stdio provider configuration serving it. */
export interface FilesystemSandbox {
  /** Real path of the sandbox (symlinks in the temp dir resolved, as the server reports it). */
  readonly root: string;
  readonly config: ProviderConfig;
  /** Removes the sandbox folder. */
  cleanup(): Promise<void>;
}

/** Creates a mkdtemp sandbox and a provider config that runs the real filesystem server over it. */
export async function createFilesystemSandbox(providerId = 'fs'): Promise<FilesystemSandbox> {
  const root = await realpath(await mkdtemp(join(tmpdir(), 'hcp-fs-')));
  return {
    root,
    config: {
      id: providerId,
      transport: {
        kind: 'stdio',
        command: process.execPath,
        args: [filesystemServerEntry(), root],
      },
      resources: { filesystemRoots: [root] },
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
