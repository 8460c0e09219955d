import type { PolicyContext } from '@hcp/policy';
import { createLogger } from '@hcp/platform';
import type { GrantSource, ManifestSnapshot, PrincipalSnapshot } from './grant-source';

/** How fresh cached policy must be, and how many principals to keep. */
export interface PolicyCacheOptions {
  /** An entry older than this is refetched; if the refetch fails the decision is POLICY_UNAVAILABLE. */
  readonly maxStalenessMs: number;
  /** Bound on cached principals; the least recently used is dropped beyond it. */
  readonly maxPrincipals?: number;
  readonly clock?: () => number;
}

interface Entry<T> {
  readonly value: T;
  readonly fetchedAt: number;
}

/** Why the cache could not produce a context; the caller turns it into POLICY_UNAVAILABLE. */
export class PolicyUnavailableError extends Error {
  override readonly name = 'PolicyUnavailableError';
}

/**
 * The PDP's per-principal grant cache and manifest cache.
 *
 * Correctness rules (docs/adr/0003-policy-cache.md):
 * - an entry is used only while younger than maxStalenessMs; past it, it is refetched,
 *   and a failed refetch is POLICY_UNAVAILABLE — never a stale allow;
 * - an invalidation for revision N drops the entry and remembers N; a snapshot that
 *   arrives with a revision below N (a fetch that raced the write) is never cached;
 * - a fetch in flight when an invalidation arrives is not joined by later requests:
 *   they start a new fetch, so nothing decided after the event uses pre-event grants;
 * - when the bus reports a gap (disconnect/reconnect), events may have been lost, so
 *   everything is dropped.
 */
export class PolicyCache {
  private readonly log = createLogger('PolicyCache');
  private readonly principals = new Map<string, Entry<PrincipalSnapshot>>();
  private readonly inflight = new Map<string, Promise<PrincipalSnapshot>>();
  /** Highest revision announced per principal; snapshots below it are stale by definition. */
  private readonly minRevision = new Map<string, number>();
  /** Bumped by every invalidation of a principal; a fetch caches only if it is unchanged. */
  private readonly generation = new Map<string, number>();
  /** Bumped by invalidateAll. */
  private epoch = 0;
  private manifestEntry: Entry<ManifestSnapshot> | undefined;
  private manifestInflight: Promise<ManifestSnapshot> | undefined;
  private manifestMinRevision = 0;
  private readonly clock: () => number;
  private readonly maxPrincipals: number;
  private readonly listeners = new Set<(principalId: string | null, revision: number) => void>();
  /** Counters an operator (and the tests) can read. */
  readonly stats = { hits: 0, misses: 0, fetchFailures: 0, invalidations: 0, staleSnapshots: 0 };

  constructor(
    private readonly source: GrantSource,
    private readonly options: PolicyCacheOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.maxPrincipals = options.maxPrincipals ?? 100_000;
  }

  /** The policy context for a principal: cached when fresh, fetched otherwise. Throws PolicyUnavailableError. */
  async contextFor(principalId: string): Promise<PolicyContext> {
    const [snapshot, manifest] = await Promise.all([this.principal(principalId), this.manifest()]);
    return { grants: snapshot.grants, capabilities: manifest.capabilities };
  }

  /** A grant change for a principal at `revision` (from hcp.grants.changed). */
  invalidatePrincipal(principalId: string, revision: number): void {
    this.stats.invalidations++;
    if (revision > (this.minRevision.get(principalId) ?? 0))
      this.minRevision.set(principalId, revision);
    this.generation.set(principalId, (this.generation.get(principalId) ?? 0) + 1);
    this.principals.delete(principalId);
    this.inflight.delete(principalId);
    for (const l of this.listeners) l(principalId, revision);
  }

  /** Calls `listener` after every invalidation (principal null: manifest or everything); returns an unsubscribe. */
  onInvalidate(listener: (principalId: string | null, revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A manifest change at `revision`. */
  invalidateManifest(revision: number): void {
    this.stats.invalidations++;
    this.manifestMinRevision = Math.max(this.manifestMinRevision, revision);
    this.manifestEntry = undefined;
    this.manifestInflight = undefined;
    for (const l of this.listeners) l(null, revision);
  }

  /** Drops everything: the event stream had a gap, so no entry can be trusted to be current. */
  invalidateAll(reason: string): void {
    this.log.warn({ reason, principals: this.principals.size }, 'dropping every cached grant');
    this.stats.invalidations++;
    this.epoch++;
    this.principals.clear();
    this.inflight.clear();
    this.manifestEntry = undefined;
    this.manifestInflight = undefined;
    for (const l of this.listeners) l(null, 0);
  }

  /** Number of principals cached (for metrics and tests). */
  get size(): number {
    return this.principals.size;
  }

  private principal(principalId: string): Promise<PrincipalSnapshot> {
    const now = this.clock();
    const entry = this.principals.get(principalId);
    if (entry !== undefined && now - entry.fetchedAt < this.options.maxStalenessMs) {
      this.stats.hits++;
      // Refresh recency for the LRU bound.
      this.principals.delete(principalId);
      this.principals.set(principalId, entry);
      return Promise.resolve(entry.value);
    }
    this.stats.misses++;
    const pending = this.inflight.get(principalId);
    if (pending !== undefined) return pending;
    const fetch = this.fetchPrincipal(principalId).finally(() => {
      if (this.inflight.get(principalId) === fetch) this.inflight.delete(principalId);
    });
    this.inflight.set(principalId, fetch);
    return fetch;
  }

  private async fetchPrincipal(principalId: string): Promise<PrincipalSnapshot> {
    const startedAt = this.clock();
    const generation = this.generation.get(principalId) ?? 0;
    const epoch = this.epoch;
    let snapshot: PrincipalSnapshot;
    try {
      snapshot = await this.source.principal(principalId);
    } catch (err: unknown) {
      this.stats.fetchFailures++;
      throw new PolicyUnavailableError(`grants of ${principalId} unavailable: ${errorText(err)}`);
    }
    const floor = this.minRevision.get(principalId) ?? 0;
    if (snapshot.revision < floor) {
      // The read raced a write we were already told about: do not decide on it.
      this.stats.staleSnapshots++;
      throw new PolicyUnavailableError(
        `grants of ${principalId} at revision ${snapshot.revision} older than announced ${floor}`,
      );
    }
    // Cache only if no invalidation arrived while fetching.
    if (generation === (this.generation.get(principalId) ?? 0) && epoch === this.epoch) {
      this.principals.set(principalId, { value: snapshot, fetchedAt: startedAt });
      while (this.principals.size > this.maxPrincipals) {
        const oldest = this.principals.keys().next().value;
        if (oldest === undefined) break;
        this.principals.delete(oldest);
      }
    }
    return snapshot;
  }

  private manifest(): Promise<ManifestSnapshot> {
    const entry = this.manifestEntry;
    if (entry !== undefined && this.clock() - entry.fetchedAt < this.options.maxStalenessMs) {
      return Promise.resolve(entry.value);
    }
    if (this.manifestInflight !== undefined) return this.manifestInflight;
    const startedAt = this.clock();
    const fetch: Promise<ManifestSnapshot> = this.source.manifest().then(
      (snapshot) => {
        if (snapshot.revision < this.manifestMinRevision) {
          this.stats.staleSnapshots++;
          throw new PolicyUnavailableError(
            `manifest revision ${snapshot.revision} older than announced ${this.manifestMinRevision}`,
          );
        }
        if (this.manifestInflight === fetch)
          this.manifestEntry = { value: snapshot, fetchedAt: startedAt };
        return snapshot;
      },
      (err: unknown) => {
        this.stats.fetchFailures++;
        throw new PolicyUnavailableError(`capability manifest unavailable: ${errorText(err)}`);
      },
    );
    this.manifestInflight = fetch;
    void fetch
      .finally(() => {
        if (this.manifestInflight === fetch) this.manifestInflight = undefined;
      })
      .catch(() => undefined);
    return fetch;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
