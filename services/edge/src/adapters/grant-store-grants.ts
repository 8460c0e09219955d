import type { Grant } from '@hcp/core';
import type { EventBus, Subscription } from '@hcp/platform';
import { grantFromProto, grants } from '@hcp/proto';
import { closeSubscription, onGrantsChanged } from './bus-invalidation';
import { unary, type GrpcAdapterOptions } from './grpc-call';
import { TtlCache } from './ttl-cache';

/** Options of GrantStoreGrants. */
export interface GrantStoreGrantsOptions extends GrpcAdapterOptions {
  /** How long a principal's grants are served from memory; default 2000 ms. */
  readonly ttlMs?: number;
  /** Most principals cached; default 10 000. */
  readonly maxPrincipals?: number;
  /** When given, a principal's entry is dropped on every change announced on it (close() stops that). */
  readonly bus?: EventBus;
  readonly clock?: () => number;
}

/** Default TTL of the grants cache. */
export const DEFAULT_GRANTS_TTL_MS = 2000;

/**
 * A principal's live grants from grant-store (GetPrincipalGrants), cached briefly and dropped when
 * grant-store announces a change for that principal. Used for discovery only; the decision point
 * reads grants itself for every call.
 */
export class GrantStoreGrants {
  private readonly cache: TtlCache<string, readonly Grant[]>;
  private readonly subscription: Promise<Subscription> | undefined;

  constructor(
    private readonly client: grants.GrantStoreClient,
    private readonly options: GrantStoreGrantsOptions = {},
  ) {
    this.cache = new TtlCache({
      ttlMs: options.ttlMs ?? DEFAULT_GRANTS_TTL_MS,
      maxEntries: options.maxPrincipals ?? 10_000,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    this.subscription = options.bus === undefined ? undefined : this.listen(options.bus);
  }

  /** The principal's grants that are neither revoked nor expired at grant-store's read time. */
  async grantsOf(principalId: string): Promise<Grant[]> {
    const list = await this.cache.get(principalId, async () => {
      const res = await unary(
        this.client.getPrincipalGrants.bind(this.client),
        { principalId },
        this.options,
      );
      return res.grants.map(grantFromProto);
    });
    return [...list];
  }

  /** Drops one principal's cached grants, or everything. */
  invalidate(principalId?: string): void {
    if (principalId === undefined) this.cache.invalidateAll();
    else this.cache.invalidate(principalId);
  }

  /** Stops listening to the bus given in the options. */
  async close(): Promise<void> {
    await closeSubscription(this.subscription);
  }

  /** Drops a principal's entry when grant-store announces a change of their grants (and all on bus gaps). */
  listen(bus: EventBus): Promise<Subscription> {
    return onGrantsChanged(bus, (change) => {
      if (change === undefined) this.invalidate();
      else if (change.principalId !== '') this.invalidate(change.principalId);
      // A kind we cannot read without a principal may concern anyone: drop everything.
      else if (change.kind !== grants.GrantChangeKind.GRANT_CHANGE_KIND_CAPABILITY_PUT)
        this.invalidate();
    });
  }
}
