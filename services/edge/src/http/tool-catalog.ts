import type { Capability, Grant } from '@hcp/core';
import { coversCapability, grantIsLive } from '@hcp/policy';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { CallableCapability } from '../call/ports';
import type { ListedCapability, ProviderListing } from '../providers/provider-registry';

/** The built-in tool that previews a handle the caller owns (I4). */
export const PEEK_TOOL = 'hcp_peek';
/** The built-in tool that moves a handle's payload into another tool's argument (I6). */
export const PIPE_TOOL = 'hcp_pipe';

/**
 * Agent-facing name of a capability. Capability ids are `provider/tool`, but MCP tool names
 * should only use `[A-Za-z0-9._-]`; provider ids never contain '.', so `provider.tool` maps back
 * to exactly one capability (split at the first '.').
 */
export function toolNameOf(capabilityId: string): string {
  const slash = capabilityId.indexOf('/');
  return slash < 0
    ? capabilityId
    : `${capabilityId.slice(0, slash)}.${capabilityId.slice(slash + 1)}`;
}

/** The capability id a listed tool name stands for; undefined for names that cannot be one. */
export function capabilityIdOfToolName(name: string): string | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0 || dot === name.length - 1) return undefined;
  return `${name.slice(0, dot)}/${name.slice(dot + 1)}`;
}

/** Arguments of hcp_peek: the one schema the edge validates with and lists (as JSON Schema). */
export const peekArguments = z.strictObject({
  handle: z.string().min(1).max(128).describe('The handle id (hdl_...).'),
  maxBytes: z.number().int().min(1).max(65536).optional(),
});

/** Arguments of hcp_pipe, likewise. */
export const pipeArguments = z.strictObject({
  handle: z.string().min(1).max(128).describe('The source handle id.'),
  tool: z.string().min(1).max(256).describe('The target tool name, as tools/list shows it.'),
  argument: z.string().min(1).max(128).describe('The target argument that receives the data.'),
  arguments: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('The other arguments of the target call.'),
});

const jsonSchemaOf = (schema: z.ZodType): Tool['inputSchema'] =>
  z.toJSONSchema(schema) as Tool['inputSchema'];

/** The built-in tools as tools/list shows them. */
export const BUILTIN_TOOLS: readonly Tool[] = [
  {
    name: PEEK_TOOL,
    description:
      'Shows a bounded, redacted preview of a handle you own. Tool outputs are returned as handles.',
    inputSchema: jsonSchemaOf(peekArguments),
  },
  {
    name: PIPE_TOOL,
    description:
      "Calls a tool with one argument filled from a handle you own, without the data passing through you. Allowed only if both the handle's data and the target call are allowed.",
    inputSchema: jsonSchemaOf(pipeArguments),
  },
];

/**
 * The tools each provider currently lists, as last seen by this replica. Kept here so that
 * tools/list and the observed-digest of a call need no upstream round trip; refreshed when a
 * provider is registered or re-listed.
 */
export class ListingCache {
  private readonly byCapability = new Map<string, ListedCapability>();

  /** Replaces everything known of the listing's provider. */
  update(listing: ProviderListing): void {
    const prefix = `${listing.providerId}/`;
    for (const id of [...this.byCapability.keys()])
      if (id.startsWith(prefix)) this.byCapability.delete(id);
    for (const cap of listing.capabilities) this.byCapability.set(cap.capabilityId, cap);
  }

  /** The tool as the provider currently lists it. */
  get(capabilityId: string): ListedCapability | undefined {
    return this.byCapability.get(capabilityId);
  }

  /** Everything listed, in a stable order. */
  all(): ListedCapability[] {
    return [...this.byCapability.values()].sort((a, b) =>
      a.capabilityId < b.capabilityId ? -1 : a.capabilityId > b.capabilityId ? 1 : 0,
    );
  }
}

/**
 * True when some live grant names the capability or its provider wildcard: such a grant COULD
 * allow a call (resource, scopes, arguments and approval are decided per call by the decision
 * point). Built from the policy's own liveness and coverage rules, so discovery never drifts from
 * matching; it filters tools/list and never allows anything.
 */
export function someGrantCovers(
  grants: readonly Grant[],
  capability: Pick<Capability, 'id' | 'provider'>,
  now: number,
): boolean {
  return grants.some((g) => grantIsLive(g, now) && coversCapability(g.capabilities, capability));
}

/**
 * What tools/list shows a principal in hcp mode: a provider tool only when the manifest pins it,
 * its current definition still matches the pin (a changed one is hidden and uncallable until
 * re-approved, I1), and some grant of the principal's could allow it; plus the built-in tools.
 */
export function visibleTools(input: {
  readonly listed: readonly ListedCapability[];
  readonly manifest: ReadonlyMap<string, CallableCapability>;
  readonly grants: readonly Grant[];
  readonly now: number;
}): Tool[] {
  const tools: Tool[] = [];
  for (const listed of input.listed) {
    const entry = input.manifest.get(listed.capabilityId);
    if (entry === undefined) continue;
    const pin = entry.capability.definitionDigest;
    if (pin === undefined || pin !== listed.digest) continue;
    if (!someGrantCovers(input.grants, entry.capability, input.now)) continue;
    // The agent gets a handle, not the provider's output, so the provider's outputSchema (which
    // the SDK client validates results against) does not describe what comes back.
    const { outputSchema: _unused, ...tool } = listed.tool;
    void _unused;
    tools.push({ ...tool, name: toolNameOf(listed.capabilityId) });
  }
  return [...tools, ...BUILTIN_TOOLS];
}
