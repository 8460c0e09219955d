import { HcpError } from '@hcp/core';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { parseProviderConfig, type ProviderConfig } from './provider-config';
import { toolDefinitionDigest } from './tool-definition';
import { UpstreamClient, type UpstreamClientOptions, type UpstreamEvents } from './upstream-client';

/**
 * Tool names accepted from an upstream: the character set the MCP spec
 * (2025-11-25) recommends, 1-128 chars. Anything else (a `/`, spaces,
 * control characters) would make `provider/tool` ambiguous or unsafe to log,
 * so such a tool is rejected, not renamed.
 */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** The capability id of a provider tool: the join key between a listing, the manifest and grants. */
export function capabilityIdOf(providerId: string, toolName: string): string {
  return `${providerId}/${toolName}`;
}

/** One listed tool with its id and the digest of its pinned definition. */
export interface ListedCapability {
  readonly capabilityId: string;
  readonly digest: string;
  /** The definition as listed. Served to agents only after its digest matched the pin. */
  readonly tool: Tool;
}

/** A tool the registry refused to expose at all, with why. */
export interface RejectedTool {
  /** Truncated and JSON-quoted: it is upstream-controlled text. */
  readonly name: string;
  readonly reason: 'invalid_name' | 'duplicate_name';
}

/** What one listing of a provider yielded. */
export interface ProviderListing {
  readonly providerId: string;
  readonly capabilities: readonly ListedCapability[];
  readonly rejected: readonly RejectedTool[];
}

/** A listing compared with the pinned digests (capability id -> digest) the manifest holds. */
export interface DefinitionDrift {
  readonly listing: ProviderListing;
  /** Listed and pinned, but the digest differs: uncallable until re-approved (TOOL_DEFINITION_CHANGED). */
  readonly changed: readonly string[];
  /** Listed but not pinned: not callable until an operator approves it (fail closed). */
  readonly added: readonly string[];
  /** Pinned but no longer listed. */
  readonly removed: readonly string[];
}

/**
 * Guard for the call path: throws HcpError `TOOL_DEFINITION_CHANGED` unless
 * the current definition digest equals the pinned one. A capability with no
 * pinned digest fails closed the same way: an unreviewed definition is never
 * callable (I1).
 */
export function checkPinned(
  capabilityId: string,
  currentDigest: string,
  pinnedDigest: string | null | undefined,
): void {
  if (pinnedDigest === undefined || pinnedDigest === null || pinnedDigest === '') {
    throw new HcpError(
      'TOOL_DEFINITION_CHANGED',
      `${capabilityId}: no pinned tool definition; an operator must approve it`,
      { capabilityId, pinned: false },
    );
  }
  if (currentDigest !== pinnedDigest) {
    throw new HcpError(
      'TOOL_DEFINITION_CHANGED',
      `${capabilityId}: tool definition differs from the pinned one; an operator must re-approve it`,
      { capabilityId, pinned: true, pinnedDigest, currentDigest },
    );
  }
}

/**
 * The upstream providers this edge replica is connected to, and the listing
 * of their tools with definition digests.
 *
 * It does NOT decide policy: it never allows or denies a call, and it NEVER
 * reads a tool's description, title, annotations or any output as policy
 * (I1). Descriptions go into a digest and nowhere else; whether a tool is
 * callable is the capability manifest's and the decision point's business.
 */
export class ProviderRegistry {
  private readonly providers = new Map<
    string,
    { readonly config: ProviderConfig; readonly client: UpstreamClient }
  >();

  constructor(
    private readonly clientOptions: UpstreamClientOptions = {},
    /** Told (synchronously) when a provider's definitions may have changed; see ListingRefresher. */
    private readonly events: UpstreamEvents = {},
  ) {}

  /**
   * Validates the configuration, connects, and lists the provider's tools.
   * On any failure the connection is closed and the error (HcpError
   * `INPUT_INVALID` or UpstreamError) is thrown; nothing is half-registered.
   */
  async register(input: ProviderConfig): Promise<ProviderListing> {
    const config = parseProviderConfig(input);
    if (this.providers.has(config.id)) {
      throw new HcpError('INPUT_INVALID', `provider ${config.id} is already registered`, {
        field: 'id',
      });
    }
    const client = await UpstreamClient.connect(config, this.clientOptions, this.events);
    try {
      const listing = await this.listWith(config.id, client);
      this.providers.set(config.id, { config, client });
      return listing;
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  /** Ids of the registered providers. */
  providerIds(): string[] {
    return [...this.providers.keys()];
  }

  /** The validated configuration (roots, CIDRs) the canonicalisers of this provider use. */
  config(providerId: string): ProviderConfig {
    return this.entry(providerId).config;
  }

  /** The live connection the call path invokes through. */
  client(providerId: string): UpstreamClient {
    return this.entry(providerId).client;
  }

  /** Lists the provider's tools again (e.g. on `notifications/tools/list_changed`). */
  async list(providerId: string): Promise<ProviderListing> {
    return this.listWith(providerId, this.entry(providerId).client);
  }

  /**
   * Lists again and compares each digest with `pinned` (capability id ->
   * pinned digest, from the manifest). The changed ids are what must become
   * uncallable with TOOL_DEFINITION_CHANGED until re-approved.
   */
  async relist(providerId: string, pinned: ReadonlyMap<string, string>): Promise<DefinitionDrift> {
    const listing = await this.list(providerId);
    return compareWithPins(listing, pinned);
  }

  /** Closes and forgets one provider. */
  async unregister(providerId: string): Promise<void> {
    const entry = this.providers.get(providerId);
    if (!entry) return;
    this.providers.delete(providerId);
    await entry.client.close();
  }

  /** Closes every connection (shutdown, tests); stdio children are reaped. */
  async closeAll(): Promise<void> {
    const entries = [...this.providers.values()];
    this.providers.clear();
    await Promise.all(entries.map((e) => e.client.close()));
  }

  private entry(providerId: string): {
    readonly config: ProviderConfig;
    readonly client: UpstreamClient;
  } {
    const entry = this.providers.get(providerId);
    if (!entry) {
      throw new HcpError('CAPABILITY_UNKNOWN', `provider ${providerId} is not registered`, {
        providerId,
      });
    }
    return entry;
  }

  private async listWith(providerId: string, client: UpstreamClient): Promise<ProviderListing> {
    return listingOf(providerId, await client.listTools());
  }
}

/** Turns raw listed tools into capabilities, rejecting unusable names and duplicates. */
export function listingOf(providerId: string, tools: readonly Tool[]): ProviderListing {
  const counts = new Map<string, number>();
  for (const tool of tools) counts.set(tool.name, (counts.get(tool.name) ?? 0) + 1);
  const capabilities: ListedCapability[] = [];
  const rejected: RejectedTool[] = [];
  const reportedDuplicates = new Set<string>();
  for (const tool of tools) {
    if (!TOOL_NAME.test(tool.name)) {
      rejected.push({ name: quoteName(tool.name), reason: 'invalid_name' });
    } else if ((counts.get(tool.name) ?? 0) > 1) {
      // Both copies go: which one the upstream would run is unknowable.
      if (!reportedDuplicates.has(tool.name)) {
        reportedDuplicates.add(tool.name);
        rejected.push({ name: quoteName(tool.name), reason: 'duplicate_name' });
      }
    } else {
      capabilities.push({
        capabilityId: capabilityIdOf(providerId, tool.name),
        digest: toolDefinitionDigest(tool),
        tool,
      });
    }
  }
  return { providerId, capabilities, rejected };
}

/** Pure comparison of a listing against pinned digests; exported for the operator CLI and tests. */
export function compareWithPins(
  listing: ProviderListing,
  pinned: ReadonlyMap<string, string>,
): DefinitionDrift {
  const prefix = `${listing.providerId}/`;
  const listed = new Set(listing.capabilities.map((c) => c.capabilityId));
  const changed: string[] = [];
  const added: string[] = [];
  for (const cap of listing.capabilities) {
    const pin = pinned.get(cap.capabilityId);
    if (pin === undefined) added.push(cap.capabilityId);
    else if (pin !== cap.digest) changed.push(cap.capabilityId);
  }
  const removed = [...pinned.keys()].filter((id) => id.startsWith(prefix) && !listed.has(id));
  return { listing, changed, added, removed };
}

function quoteName(name: string): string {
  return JSON.stringify(name.slice(0, 128));
}
