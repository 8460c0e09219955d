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
 *
 * A provider's listing goes STALE the moment the edge learns its definitions may have changed
 * (`notifications/tools/list_changed`, or a call error that suggests it) and stays stale until a
 * listing requested after that moment has arrived (I1). While stale, `get` and `all` show none of
 * its tools: tools/list hides them, and a call carries no observed digest, so the decision point
 * refuses it as TOOL_DEFINITION_CHANGED (no observed digest never equals a pin). `listed` and
 * `allListed` ignore staleness; only the measurement baselines, which pin nothing, use them.
 */
export class ListingCache {
  private readonly byCapability = new Map<string, ListedCapability>();
  /** Per provider: bumped by every markStale; a listing begun at an older epoch cannot clear it. */
  private readonly epochs = new Map<string, number>();
  private readonly stale = new Set<string>();

  /**
   * Marks the provider's listing stale at once (synchronously) and returns the new epoch. A
   * listing requested before this moment may describe the old definitions, so only an update
   * carrying this epoch or a later one clears it.
   */
  markStale(providerId: string): number {
    const epoch = this.epoch(providerId) + 1;
    this.epochs.set(providerId, epoch);
    this.stale.add(providerId);
    return epoch;
  }

  /** The provider's current epoch: take it BEFORE requesting a listing, pass it to `update`. */
  epoch(providerId: string): number {
    return this.epochs.get(providerId) ?? 0;
  }

  /** True while the provider's tools are hidden and uncallable awaiting a fresh listing. */
  isStale(providerId: string): boolean {
    return this.stale.has(providerId);
  }

  /**
   * Replaces everything known of the listing's provider. `requestedAt` is the epoch taken before
   * the listing was requested: the listing clears staleness only if no markStale came since
   * (default: the current epoch, for a listing nothing could have raced, like registration).
   */
  update(listing: ProviderListing, requestedAt?: number): void {
    const providerId = listing.providerId;
    const prefix = `${providerId}/`;
    for (const id of [...this.byCapability.keys()])
      if (id.startsWith(prefix)) this.byCapability.delete(id);
    for (const cap of listing.capabilities) this.byCapability.set(cap.capabilityId, cap);
    if ((requestedAt ?? this.epoch(providerId)) >= this.epoch(providerId))
      this.stale.delete(providerId);
  }

  /** The tool as the provider currently lists it; undefined while its provider's listing is stale. */
  get(capabilityId: string): ListedCapability | undefined {
    const listed = this.byCapability.get(capabilityId);
    return listed === undefined || this.stale.has(providerOf(capabilityId)) ? undefined : listed;
  }

  /** Everything listed and not stale, in a stable order. */
  all(): ListedCapability[] {
    return this.allListed().filter((l) => !this.stale.has(providerOf(l.capabilityId)));
  }

  /** The tool as last listed, stale or not (measurement baselines only). */
  listed(capabilityId: string): ListedCapability | undefined {
    return this.byCapability.get(capabilityId);
  }

  /** Everything as last listed, stale or not, in a stable order (measurement baselines only). */
  allListed(): ListedCapability[] {
    return [...this.byCapability.values()].sort((a, b) =>
      a.capabilityId < b.capabilityId ? -1 : a.capabilityId > b.capabilityId ? 1 : 0,
    );
  }
}

function providerOf(capabilityId: string): string {
  return capabilityId.slice(0, capabilityId.indexOf('/'));
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
