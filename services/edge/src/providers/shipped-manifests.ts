import type { ResourceArgument } from '@hcp/core';
import type { CapabilitySpec } from '../edge';

/**
 * The manifest entries the edge ships for the reference servers, one for EVERY tool they list:
 * @modelcontextprotocol/server-filesystem (2026.8.31) and mcp-server-fetch. A tool not listed
 * here would not be callable; a path or URL argument not declared here would refuse startup
 * (resource-arguments.ts). providers/shipped-manifests.spec.ts lists the real servers and fails
 * when a version adds a tool or an argument these entries do not cover.
 *
 * Scopes: `fs:read` for every read, `fs:write` for every change, and `fs:delete` on the source
 * of a move (the file is gone from there). `net:fetch` for a fetch.
 */

const pathArg = (
  name: string,
  role: ResourceArgument['role'],
  extra: Partial<ResourceArgument> = {},
) => ({ name, canonicalizer: 'path', role, ...extra }) as const satisfies ResourceArgument;

const read = {
  effects: ['read'],
  risk: 'low',
  approvalRequired: false,
  requiredScopes: ['fs:read'],
} as const;

const write = {
  effects: ['write'],
  risk: 'high',
  approvalRequired: true,
  requiredScopes: ['fs:write'],
} as const;

/** Every tool of @modelcontextprotocol/server-filesystem. */
export const FILESYSTEM_CAPABILITIES: readonly CapabilitySpec[] = [
  { tool: 'read_file', ...read, resourceArguments: [pathArg('path', 'read')] },
  { tool: 'read_text_file', ...read, resourceArguments: [pathArg('path', 'read')] },
  { tool: 'read_media_file', ...read, resourceArguments: [pathArg('path', 'read')] },
  {
    tool: 'read_multiple_files',
    ...read,
    resourceArguments: [pathArg('paths', 'read', { many: true })],
  },
  { tool: 'list_directory', ...read, resourceArguments: [pathArg('path', 'read')] },
  { tool: 'list_directory_with_sizes', ...read, resourceArguments: [pathArg('path', 'read')] },
  { tool: 'directory_tree', ...read, resourceArguments: [pathArg('path', 'read')] },
  // `pattern` and `excludePatterns` are globs matched below `path`, not places of their own.
  { tool: 'search_files', ...read, resourceArguments: [pathArg('path', 'read')] },
  { tool: 'get_file_info', ...read, resourceArguments: [pathArg('path', 'read')] },
  // Names the configured roots only; no argument.
  { tool: 'list_allowed_directories', ...read, resourceArguments: [] },
  { tool: 'write_file', ...write, resourceArguments: [pathArg('path', 'write')] },
  { tool: 'edit_file', ...write, resourceArguments: [pathArg('path', 'write')] },
  { tool: 'create_directory', ...write, resourceArguments: [pathArg('path', 'write')] },
  {
    tool: 'move_file',
    ...write,
    effects: ['write', 'delete'],
    resourceArguments: [
      pathArg('source', 'delete', { scopes: ['fs:delete'] }),
      pathArg('destination', 'write'),
    ],
  },
];

/** Every tool of mcp-server-fetch. */
export const FETCH_CAPABILITIES: readonly CapabilitySpec[] = [
  {
    tool: 'fetch',
    effects: ['network', 'read'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: ['net:fetch'],
    resourceArguments: [{ name: 'url', canonicalizer: 'url', role: 'fetch' }],
  },
];
