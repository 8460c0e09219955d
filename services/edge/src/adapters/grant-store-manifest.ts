import { HcpError, type Capability } from '@hcp/core';
import type { EventBus, Subscription } from '@hcp/platform';
import { capabilityFromProto, capabilityToProto, grants } from '@hcp/proto';
import type { CallableCapability, ManifestPort } from '../call/ports';
import { closeSubscription, onGrantsChanged } from './bus-invalidation';
import { unary, type GrpcAdapterOptions } from './grpc-call';
import { TtlCache } from './ttl-cache';

/** The edge-side settings of one capability, which the manifest in grant-store does not hold. */
export interface CapabilitySettings {
  /** Allow an inline (redacted, bounded) preview of the output; default false. */
  readonly inlinePreview?: boolean;
  /** Bound of that preview in bytes; the call path's default applies when absent. */
  readonly previewMaxBytes?: number;
  /** Data classification stamped on the output handle as its `sensitivity` label. */
  readonly sensitivity?: string;
  /**
   * Classification by where the data came from: an output whose canonical path lies under one of
   * these prefixes (segment boundary) is labelled with that sensitivity, e.g. a secrets folder.
   */
  readonly sensitivePaths?: readonly { readonly prefix: string; readonly sensitivity: string }[];
}

/** Options of GrantStoreManifest. */
export interface GrantStoreManifestOptions extends GrpcAdapterOptions {
  /** How long a manifest read is served from memory; default 2000 ms. */
  readonly ttlMs?: number;
  /**
   * Settings keyed by capability id (`fs/read_file`) or provider wildcard (`fs/*`); the exact id's
   * fields override the wildcard's. A capability with neither gets no inline preview and no label.
   */
  readonly settings?: Readonly<Record<string, CapabilitySettings>>;
  /** When given, the cache is dropped on every manifest change announced on it (close() stops that). */
  readonly bus?: EventBus;
  readonly clock?: () => number;
}

/** Default TTL of the manifest cache: short, because the bus invalidation is best effort. */
export const DEFAULT_MANIFEST_TTL_MS = 2000;

/** One read of the manifest, with the edge settings applied. */
interface ManifestSnapshot {
  readonly byId: ReadonlyMap<string, CallableCapability>;
  readonly all: readonly CallableCapability[];
}

/**
 * The capability manifest as the edge sees it: grant-store's entries (ListCapabilities, cached with
 * a short TTL and dropped on a manifest change event) joined with the operator's edge settings.
 * It also writes entries (PutCapability), which is how a newly registered provider's definition
 * digests are pinned (I1). It never decides: the decision point checks the pin on every call.
 */
export class GrantStoreManifest implements ManifestPort {
  private readonly cache: TtlCache<'manifest', ManifestSnapshot>;
  private readonly settings: Readonly<Record<string, CapabilitySettings>>;
  private readonly subscription: Promise<Subscription> | undefined;

  constructor(
    private readonly client: grants.GrantStoreClient,
    private readonly options: GrantStoreManifestOptions = {},
  ) {
    this.settings = validatedSettings(options.settings ?? {});
    this.cache = new TtlCache({
      ttlMs: options.ttlMs ?? DEFAULT_MANIFEST_TTL_MS,
      maxEntries: 1,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    this.subscription = options.bus === undefined ? undefined : this.listen(options.bus);
  }

  async capability(capabilityId: string): Promise<CallableCapability | undefined> {
    return (await this.snapshot()).byId.get(capabilityId);
  }

  /** Every manifest entry, ordered by id (tools/list discovery). */
  async all(): Promise<CallableCapability[]> {
    return [...(await this.snapshot()).all];
  }

  /** Creates or replaces one entry; the cache is dropped so the next read sees it. */
  async put(capability: Capability): Promise<Capability> {
    try {
      const res = await unary(
        this.client.putCapability.bind(this.client),
        { capability: capabilityToProto(capability) },
        this.options,
      );
      if (res.capability === undefined)
        throw new Error('PutCapability: grant-store answered without a capability');
      return capabilityFromProto(res.capability);
    } finally {
      this.invalidate();
    }
  }

  /**
   * Writes the entries of a provider being registered, each carrying the definition digest the
   * operator approved. Entries without a digest are refused: an unpinned entry would make the
   * tool callable with whatever definition the provider lists later.
   */
  async pin(capabilities: readonly Capability[]): Promise<Capability[]> {
    const unpinned = capabilities.find((c) => (c.definitionDigest ?? '') === '');
    if (unpinned !== undefined) {
      throw new HcpError(
        'INPUT_INVALID',
        `capability.definitionDigest: ${unpinned.id} is not pinned`,
        {
          field: 'capability.definitionDigest',
        },
      );
    }
    const written: Capability[] = [];
    for (const capability of capabilities) written.push(await this.put(capability));
    return written;
  }

  /** Drops the cached manifest. */
  invalidate(): void {
    this.cache.invalidateAll();
  }

  /** Stops listening to the bus given in the options. */
  async close(): Promise<void> {
    await closeSubscription(this.subscription);
  }

  /** Drops the cache on every manifest change grant-store announces (and on bus gaps). */
  listen(bus: EventBus): Promise<Subscription> {
    return onGrantsChanged(bus, (change) => {
      if (
        change === undefined ||
        change.kind === grants.GrantChangeKind.GRANT_CHANGE_KIND_CAPABILITY_PUT ||
        change.principalId === ''
      ) {
        this.invalidate();
      }
    });
  }

  private snapshot(): Promise<ManifestSnapshot> {
    return this.cache.get('manifest', async () => {
      const res = await unary(
        this.client.listCapabilities.bind(this.client),
        { provider: '' },
        this.options,
      );
      const all = res.capabilities
        .map(capabilityFromProto)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((capability) => this.callable(capability));
      return { byId: new Map(all.map((c) => [c.capability.id, c])), all };
    });
  }

  private callable(capability: Capability): CallableCapability {
    // The provider's defaults, overridden field by field by the capability's own entry.
    const s = { ...this.settings[`${capability.provider}/*`], ...this.settings[capability.id] };
    return {
      capability,
      inlinePreview: s.inlinePreview ?? false,
      ...(s.previewMaxBytes === undefined ? {} : { previewMaxBytes: s.previewMaxBytes }),
      ...(s.sensitivity === undefined ? {} : { sensitivity: s.sensitivity }),
      ...(s.sensitivePaths === undefined ? {} : { sensitivePaths: s.sensitivePaths }),
    };
  }
}

/** Operator configuration is still input: a bad preview bound fails at boot, naming the key. */
function validatedSettings(
  settings: Readonly<Record<string, CapabilitySettings>>,
): Readonly<Record<string, CapabilitySettings>> {
  for (const [key, s] of Object.entries(settings)) {
    const max = s.previewMaxBytes;
    if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
      throw new HcpError(
        'INPUT_INVALID',
        `settings.${key}.previewMaxBytes: must be a positive integer`,
        {
          field: `settings.${key}.previewMaxBytes`,
        },
      );
    }
    if (s.sensitivity !== undefined && (s.sensitivity === '' || s.sensitivity.length > 64)) {
      throw new HcpError('INPUT_INVALID', `settings.${key}.sensitivity: must be 1-64 characters`, {
        field: `settings.${key}.sensitivity`,
      });
    }
  }
  return { ...settings };
}
