/** How many items a group may hold and how large it may grow. */
export interface GroupCommitOptions<T> {
  /** Most items sent in one call. */
  readonly maxItems: number;
  /** Most bytes (by `sizeOf`) in one call; an item larger than this still goes, alone. */
  readonly maxBytes: number;
  readonly sizeOf: (item: T) => number;
  /** Calls in flight at once; default 1. */
  readonly maxInFlight?: number;
}

interface Waiter<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Natural batching without a timer (ADR 0005 §1, handle-vault's Puts): an item submitted
 * while no call is in flight is sent at once, alone; items submitted while calls are in
 * flight wait and go together, in arrival order, when one finishes. Each submitter gets its
 * own result once its group's call returns; if the call fails, every submitter of that group
 * gets that same error (nothing is retried, split or resent).
 */
export class GroupCommit<T, R> {
  private readonly waiting: Waiter<T, R>[] = [];
  private inFlight = 0;
  private readonly maxInFlight: number;

  /** `send` gets the items of one group and answers one result per item, in the same order. */
  constructor(
    private readonly send: (items: readonly T[]) => Promise<readonly R[]>,
    private readonly options: GroupCommitOptions<T>,
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.inFlight < this.maxInFlight) this.next();
    });
  }

  private next(): void {
    const group = this.take();
    if (group.length === 0) return;
    this.inFlight++;
    void this.run(group).finally(() => {
      this.inFlight--;
      if (this.waiting.length > 0 && this.inFlight < this.maxInFlight) this.next();
    });
  }

  /** The waiting items from the front, within maxItems and maxBytes (at least one). */
  private take(): Waiter<T, R>[] {
    const { maxItems, maxBytes, sizeOf } = this.options;
    let count = 0;
    let bytes = 0;
    for (const w of this.waiting) {
      const size = sizeOf(w.item);
      if (count > 0 && (count >= maxItems || bytes + size > maxBytes)) break;
      count++;
      bytes += size;
    }
    return this.waiting.splice(0, count);
  }

  private async run(group: readonly Waiter<T, R>[]): Promise<void> {
    let results: readonly R[];
    try {
      results = await this.send(group.map((w) => w.item));
      if (results.length !== group.length)
        throw new Error(`a group of ${group.length} got ${results.length} results`);
    } catch (err: unknown) {
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => w.resolve(results[i]!));
  }
}
