import { createLogger } from '@hcp/platform';
import { DEFAULT_RELIST_INTERVAL_MS } from './provider-config';
import { compareWithPins, type ProviderListing, type ProviderRegistry } from './provider-registry';
import type { ToolsChangedSign } from './upstream-client';

/** Where listings go: the edge's ListingCache (tools/list and the observed digest of a call). */
export interface ListingSink {
  markStale(providerId: string): number;
  epoch(providerId: string): number;
  isStale(providerId: string): boolean;
  update(listing: ProviderListing, requestedAt?: number): void;
}

/** What the refresher needs. */
export interface ListingRefresherDeps {
  readonly registry: Pick<ProviderRegistry, 'list' | 'providerIds' | 'config'>;
  readonly listings: ListingSink;
  /** The pinned digests (capability id -> digest), to name drift in the log; may fail. */
  readonly pins: () => Promise<ReadonlyMap<string, string>>;
  /**
   * Overrides every provider's `relistIntervalMs`; 0 turns the periodic re-list off (tests and
   * the benchmark drive `relist` themselves; announced changes are still re-listed at once).
   */
  readonly intervalMs?: number;
}

const log = createLogger('ListingRefresher');

/**
 * The one mechanism that keeps the edge's listings in step with the upstreams (I1). Two triggers
 * lead into it: a sign that a provider's definitions changed (`toolsChanged`: the announcement
 * `notifications/tools/list_changed`, or a call error that suggests it), and each provider's
 * periodic re-list (`relistIntervalMs`, the only trigger for a provider that never announces).
 *
 * A sign marks the provider's listing stale synchronously, before any other request is handled:
 * its tools vanish from tools/list and every call of them is refused TOOL_DEFINITION_CHANGED by
 * the decision point. A re-list follows at once; a burst of signs is coalesced into the running
 * round plus at most one more. The listing that round brings clears the mark only if it was
 * requested after the last sign; then each tool is callable again exactly when its digest equals
 * its pin. A failed re-list leaves the mark in place (fail closed) until a later round succeeds.
 */
export class ListingRefresher {
  private readonly rounds = new Map<string, { running?: Promise<void>; queued?: Promise<void> }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly deps: ListingRefresherDeps) {}

  /** The UpstreamEvents listener: marks stale now, re-lists soon. Never throws. */
  readonly toolsChanged = (providerId: string, sign: ToolsChangedSign): void => {
    this.deps.listings.markStale(providerId);
    log.warn(
      { provider: providerId, sign },
      'tool definitions may have changed: tools hidden and uncallable until re-listed',
    );
    // During registration the provider is not listed yet; its registration re-lists (`registered`).
    if (this.closed || !this.deps.registry.providerIds().includes(providerId)) return;
    this.relist(providerId).catch((err: unknown) =>
      log.warn({ err, provider: providerId }, 're-list after a change failed; tools stay hidden'),
    );
  };

  /**
   * Call after a provider's first listing went into the sink: starts its periodic re-list, and
   * re-lists at once if a change was signalled while it registered.
   */
  registered(providerId: string): void {
    if (this.closed) return;
    const every =
      this.deps.intervalMs ??
      this.deps.registry.config(providerId).relistIntervalMs ??
      DEFAULT_RELIST_INTERVAL_MS;
    if (every > 0 && !this.timers.has(providerId)) {
      const timer = setInterval(() => {
        this.relist(providerId).catch((err: unknown) =>
          log.warn({ err, provider: providerId }, 'periodic re-list failed'),
        );
      }, every);
      timer.unref();
      this.timers.set(providerId, timer);
    }
    if (this.deps.listings.isStale(providerId))
      this.relist(providerId).catch((err: unknown) =>
        log.warn({ err, provider: providerId }, 're-list after a change failed; tools stay hidden'),
      );
  }

  /**
   * Lists the provider again. While a round runs, callers join one round queued behind it (it
   * starts after the running one, so it sees every change signalled so far).
   */
  relist(providerId: string): Promise<void> {
    const state = this.rounds.get(providerId) ?? {};
    this.rounds.set(providerId, state);
    if (state.queued !== undefined) return state.queued;
    if (state.running !== undefined) {
      const queued = state.running
        .catch(() => undefined)
        .then(() => {
          state.queued = undefined;
          return this.start(providerId, state);
        });
      state.queued = queued;
      return queued;
    }
    return this.start(providerId, state);
  }

  /** Lists every provider again (the operator's and the tests' "now"). */
  async relistAll(): Promise<void> {
    for (const providerId of this.deps.registry.providerIds()) await this.relist(providerId);
  }

  /** Stops the periodic re-lists; rounds in flight finish on their own. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
  }

  private start(providerId: string, state: { running?: Promise<void> }): Promise<void> {
    const running = this.round(providerId).finally(() => {
      if (state.running === running) state.running = undefined;
    });
    state.running = running;
    return running;
  }

  private async round(providerId: string): Promise<void> {
    const { listings } = this.deps;
    // Taken before the request: a sign arriving while the listing travels keeps the mark.
    const requestedAt = listings.epoch(providerId);
    const listing = await this.deps.registry.list(providerId);
    listings.update(listing, requestedAt);
    const pins = await this.deps.pins().catch((err: unknown) => {
      log.warn({ err }, 'pins unavailable: drift not named (calls are still checked by digest)');
      return new Map<string, string>();
    });
    const drift = compareWithPins(listing, pins);
    for (const id of drift.changed)
      log.warn(
        {
          capability: id,
          pinned: pins.get(id),
          current: listing.capabilities.find((c) => c.capabilityId === id)?.digest,
        },
        'tool definition differs from its pin: uncallable (TOOL_DEFINITION_CHANGED) until re-approved',
      );
  }
}
