/** Bounds of a TtlCache. */
export interface TtlCacheOptions {
  /** How long a loaded value is served, counted from when its load started. */
  readonly ttlMs: number;
  /** Most keys kept; the oldest-loaded goes first. */
  readonly maxEntries: number;
  readonly clock?: () => number;
}

interface Entry<V> {
  readonly value: V;
  readonly loadedAt: number;
}

/**
 * A small read-through cache for data another service owns (grants, the manifest): values expire
 * after a short TTL, concurrent misses share one load, and an invalidation also disowns a load
 * already in flight, so a value read before a change is never stored as fresh after it.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly loading = new Map<K, Promise<V>>();
  private readonly clock: () => number;

  constructor(private readonly options: TtlCacheOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** The cached value, or the result of `load` (shared with concurrent callers); a failed load is not cached. */
  get(key: K, load: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry !== undefined && this.clock() - entry.loadedAt < this.options.ttlMs) {
      return Promise.resolve(entry.value);
    }
    const pending = this.loading.get(key);
    if (pending !== undefined) return pending;
    const startedAt = this.clock();
    const promise = load().then(
      (value) => {
        // Only the load still registered for the key may fill it: an invalidation disowned it.
        if (this.loading.get(key) === promise) {
          this.loading.delete(key);
          this.store(key, { value, loadedAt: startedAt });
        }
        return value;
      },
      (err: unknown) => {
        if (this.loading.get(key) === promise) this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, promise);
    return promise;
  }

  /** Drops one key, and disowns its in-flight load. */
  invalidate(key: K): void {
    this.entries.delete(key);
    this.loading.delete(key);
  }

  /** Drops everything (e.g. the bus lost events). */
  invalidateAll(): void {
    this.entries.clear();
    this.loading.clear();
  }

  /** Number of cached keys (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  private store(key: K, entry: Entry<V>): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }
}
