import { digestOf } from '@hcp/core';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

/**
 * The part of a tool definition that is pinned by digest when a provider is
 * registered (I1). Exported so the operator tooling can show exactly what an
 * approval covers.
 *
 * Pinned, and why:
 * - `name`: the capability id is `provider/name`; a rename is a different tool.
 * - `description`: it is text the model reads and acts on. A provider that
 *   rewrites it after approval ("rug pull", injected instructions) must make
 *   the tool uncallable until an operator looks at it again.
 * - `inputSchema`: arguments are validated against the pinned schema; a
 *   widened schema (new argument, looser pattern) must be re-approved.
 * - `annotations` (when present): readOnlyHint, destructiveHint and friends.
 *   They are hints, never policy (effects and risk come from the capability
 *   manifest), but a flip from read-only to destructive is exactly the kind of
 *   change an operator should see.
 *
 * Not pinned: `title`, `icons`, `outputSchema`, `execution`, `_meta`. They
 * are display or transport detail the call path does not rely on today; adding
 * one later changes every digest, so it must come with a re-approval of all
 * tools (a versioned digest would be the way to do that).
 *
 * Canonicalisation is RFC 8785 (JCS) before SHA-256, so key order in the
 * upstream's JSON does not change the digest, while any change of a value
 * does. `description` absent and `description: ""` are different
 * definitions and digest differently.
 */
export interface PinnedToolDefinition {
  readonly name: string;
  readonly description?: string;
  readonly inputSchema: Tool['inputSchema'];
  readonly annotations?: NonNullable<Tool['annotations']>;
}

/** Projects a listed tool onto exactly the pinned fields, dropping everything else. */
export function pinnedToolDefinition(tool: Tool): PinnedToolDefinition {
  return {
    name: tool.name,
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    inputSchema: tool.inputSchema,
    ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
  };
}

/**
 * `sha256:<hex>` over the JCS form of the pinned definition; stored as
 * `Capability.definitionDigest` and compared on every call (I1).
 */
export function toolDefinitionDigest(tool: Tool): string {
  return digestOf(pinnedToolDefinition(tool));
}
