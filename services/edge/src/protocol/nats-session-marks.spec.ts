import { NatsSessionMarks, type MarksBucket } from './nats-session-marks';
import { SignedSessionStore } from './session-store';

/** An in-memory stand-in for a KV bucket with the same create/put semantics; can be made to fail or hang. */
class FakeBucket implements MarksBucket {
  readonly values = new Map<string, string>();
  mode: 'ok' | 'fail' | 'hang' = 'ok';

  private gate<T>(work: () => T): Promise<T> {
    if (this.mode === 'fail') return Promise.reject(new Error('connection closed'));
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    return Promise.resolve(work());
  }

  get(key: string) {
    return this.gate(() => {
      const v = this.values.get(key);
      return v === undefined ? null : { operation: 'PUT', string: () => v };
    });
  }

  create(key: string, value: string) {
    return this.gate(() => {
      if (this.values.has(key)) throw new Error('wrong last sequence');
      this.values.set(key, value);
      return 1;
    });
  }

  put(key: string, value: string) {
    return this.gate(() => {
      this.values.set(key, value);
      return 1;
    });
  }
}

const SID = 'AAAAAAAAAAAAAAAAAAAAAA';
const HOUR = 3_600_000;

/** The sid inside a signed session id (its payload's `sid`). */
function sidOf(sessionId: string): string {
  const body = sessionId.split('.')[0]!;
  return (JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { sid: string }).sid;
}

describe('NatsSessionMarks', () => {
  let now = 1_000_000;
  const clock = () => now;
  let bucket: FakeBucket;
  let marks: NatsSessionMarks;

  beforeEach(() => {
    now = 1_000_000;
    bucket = new FakeBucket();
    marks = new NatsSessionMarks(bucket, { now: clock, timeoutMs: 50 });
  });

  it('records initialized, and a second replica on the same bucket sees it', async () => {
    expect(await marks.isInitialized(SID)).toBe(false);
    await marks.markInitialized(SID, now + HOUR);
    const other = new NatsSessionMarks(bucket, { now: clock });
    expect(await other.isInitialized(SID)).toBe(true);
    expect(await other.isEnded(SID)).toBe(false);
  });

  it('ended wins: a later markInitialized does not revive an ended session', async () => {
    await marks.markInitialized(SID, now + HOUR);
    await marks.markEnded(SID, now + HOUR);
    await marks.markInitialized(SID, now + HOUR);
    expect(await marks.isEnded(SID)).toBe(true);
    expect(await marks.isInitialized(SID)).toBe(false);
  });

  it('marking initialized twice is fine', async () => {
    await marks.markInitialized(SID, now + HOUR);
    await expect(marks.markInitialized(SID, now + HOUR)).resolves.toBeUndefined();
    expect(await marks.isInitialized(SID)).toBe(true);
  });

  it('forgets marks past the session expiry', async () => {
    await marks.markEnded(SID, now + HOUR);
    now += HOUR;
    expect(await marks.isEnded(SID)).toBe(false);
  });

  it('fails closed when the bucket is unreachable: not initialized, ended', async () => {
    await marks.markInitialized(SID, now + HOUR);
    bucket.mode = 'fail';
    expect(await marks.isInitialized(SID)).toBe(false);
    expect(await marks.isEnded(SID)).toBe(true);
    bucket.mode = 'ok';
    expect(await marks.isInitialized(SID)).toBe(true);
    expect(await marks.isEnded(SID)).toBe(false);
  });

  it('fails closed when the bucket does not answer within the bound', async () => {
    await marks.markInitialized(SID, now + HOUR);
    bucket.mode = 'hang';
    expect(await marks.isInitialized(SID)).toBe(false);
    expect(await marks.isEnded(SID)).toBe(true);
  });

  it('writes that cannot reach the bucket throw POLICY_UNAVAILABLE', async () => {
    bucket.mode = 'fail';
    await expect(marks.markInitialized(SID, now + HOUR)).rejects.toMatchObject({
      reason: 'POLICY_UNAVAILABLE',
    });
    await expect(marks.markEnded(SID, now + HOUR)).rejects.toMatchObject({
      reason: 'POLICY_UNAVAILABLE',
    });
  });

  it('treats a malformed value as unreadable (fail closed) and a well-formed one as readable', async () => {
    bucket.values.set(SID, '{"state":"initialized"}');
    expect(await marks.isInitialized(SID)).toBe(false);
    expect(await marks.isEnded(SID)).toBe(true);
    bucket.values.set(SID, JSON.stringify({ state: 'initialized', expiresAt: now + HOUR }));
    expect(await marks.isInitialized(SID)).toBe(true);
  });

  it('refuses sids that are not KV-safe tokens and accepts base64url ones', async () => {
    await expect(marks.markEnded('a.b>', now + HOUR)).rejects.toMatchObject({
      reason: 'INPUT_INVALID',
    });
    expect(await marks.isInitialized('a.b>')).toBe(false);
    await expect(marks.markEnded('abc-_DEF', now + HOUR)).resolves.toBeUndefined();
  });

  it('refuses a mark that would outlive the bucket TTL (it would vanish before its session)', async () => {
    const short = new NatsSessionMarks(bucket, { now: clock }, { bucketTtlMs: HOUR });
    await expect(short.markEnded(SID, now + 2 * HOUR)).rejects.toMatchObject({
      reason: 'INPUT_INVALID',
    });
    await expect(short.markEnded(SID, now + HOUR)).resolves.toBeUndefined();
  });

  it('backs a SignedSessionStore: state carries across store instances (restart, replica)', async () => {
    const keys = [{ id: 'k1', secret: 's'.repeat(32) }];
    const a = new SignedSessionStore({ keys, marks, now: clock });
    const id = await a.create('alice', '2025-11-25');
    await a.markInitialized(id);
    const b = new SignedSessionStore({
      keys,
      marks: new NatsSessionMarks(bucket, { now: clock }),
      now: clock,
    });
    expect(await b.get(id)).toMatchObject({ state: 'active', initialized: true });
    await b.end(id);
    expect(await a.get(id)).toMatchObject({ state: 'ended' });
  });

  it('lookup answers both facts in one read, exactly as isEnded and isInitialized do', async () => {
    const reads = jest.spyOn(bucket, 'get');
    const both = async () => ({
      viaLookup: await marks.lookup(SID),
      separately: { ended: await marks.isEnded(SID), initialized: await marks.isInitialized(SID) },
    });
    const check = async (expected: { ended: boolean; initialized: boolean }) => {
      const { viaLookup, separately } = await both();
      expect(viaLookup).toEqual(expected);
      expect(separately).toEqual(expected);
    };
    await check({ ended: false, initialized: false }); // unknown sid
    await marks.markInitialized(SID, now + HOUR);
    await check({ ended: false, initialized: true });
    await marks.markEnded(SID, now + HOUR);
    await check({ ended: true, initialized: false });
    now += HOUR;
    await check({ ended: false, initialized: false }); // past expiry: forgotten
    reads.mockClear();
    await marks.lookup(SID);
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('lookup fails closed like the separate reads: unreachable, slow or malformed = ended', async () => {
    await marks.markInitialized(SID, now + HOUR);
    for (const mode of ['fail', 'hang'] as const) {
      bucket.mode = mode;
      expect(await marks.lookup(SID)).toEqual({ ended: true, initialized: false });
    }
    bucket.mode = 'ok';
    expect(await marks.lookup(SID)).toEqual({ ended: false, initialized: true });
    bucket.values.set(SID, '{"state":"initialized"}');
    expect(await marks.lookup(SID)).toEqual({ ended: true, initialized: false });
    expect(await marks.lookup('a.b>')).toEqual({ ended: true, initialized: false });
  });

  it('a SignedSessionStore reads the marks once per lookup, and sees an end at once', async () => {
    const keys = [{ id: 'k1', secret: 's'.repeat(32) }];
    const store = new SignedSessionStore({ keys, marks, now: clock });
    const id = await store.create('alice', '2025-11-25');
    await store.markInitialized(id);
    const reads = jest.spyOn(bucket, 'get');
    expect(await store.get(id)).toMatchObject({ state: 'active', initialized: true });
    expect(reads).toHaveBeenCalledTimes(1);
    // Another replica ends it: the very next lookup here says ended (nothing cached).
    await new NatsSessionMarks(bucket, { now: clock }).markEnded(sidOf(id), now + HOUR);
    expect(await store.get(id)).toMatchObject({ state: 'ended', initialized: false });
  });
});

/** A feed the test pushes into: the KV watch (key changes) or the connection status. */
class Feed<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private wake: (() => void) | undefined;
  ended = false;
  push(item: T): void {
    this.queue.push(item);
    this.wake?.();
  }
  stop(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      while (this.queue.length > 0) yield this.queue.shift()!;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

describe('NatsSessionMarks cache of "initialized, not ended" (ADR 0005 §3)', () => {
  const now = 1_000_000;
  const tick = () => new Promise((r) => setImmediate(r));

  async function setup(): Promise<{
    bucket: FakeBucket & { gets: number };
    marks: NatsSessionMarks;
    watches: Feed<{ key: string }>[];
    status: Feed<{ type: string }>;
    watchReady: { open: boolean };
  }> {
    const bucket = Object.assign(new FakeBucket(), { gets: 0 });
    const get = bucket.get.bind(bucket);
    bucket.get = (key: string) => {
      bucket.gets++;
      return get(key);
    };
    const watches: Feed<{ key: string }>[] = [];
    const status = new Feed<{ type: string }>();
    const watchReady = { open: true };
    const marks = new NatsSessionMarks(
      bucket,
      { now: () => now, timeoutMs: 50 },
      {
        watch: {
          watch: () => {
            if (!watchReady.open) return Promise.reject(new Error('no connection'));
            const feed = new Feed<{ key: string }>();
            watches.push(feed);
            return Promise.resolve(feed);
          },
          status: () => status,
        },
      },
    );
    await tick();
    await marks.markInitialized(SID, now + HOUR);
    return { bucket, marks, watches, status, watchReady };
  }

  it('serves an initialized session from the cache while the watch runs', async () => {
    const { bucket, marks } = await setup();
    expect(marks.cacheActive).toBe(true);
    expect(await marks.lookup(SID)).toEqual({ ended: false, initialized: true });
    const reads = bucket.gets;
    expect(await marks.lookup(SID)).toEqual({ ended: false, initialized: true });
    expect(await marks.isEnded(SID)).toBe(false);
    expect(bucket.gets).toBe(reads);
  });

  it('a change of the key drops the entry: an end written by another replica is seen', async () => {
    const { bucket, marks, watches } = await setup();
    await marks.lookup(SID);
    // Another replica ends the session: the bucket changes and the watch reports the key.
    bucket.values.set(SID, JSON.stringify({ state: 'ended', expiresAt: now + HOUR }));
    expect(await marks.lookup(SID)).toEqual({ ended: false, initialized: true }); // not yet delivered
    watches.at(-1)!.push({ key: SID });
    await tick();
    expect(await marks.lookup(SID)).toEqual({ ended: true, initialized: false });
    // Ended is never cached: read again every time.
    const reads = bucket.gets;
    await marks.lookup(SID);
    expect(bucket.gets).toBe(reads + 1);
  });

  it('fails closed to a read per request while the watch is not running (disconnect, ended)', async () => {
    const { bucket, marks, watches, status, watchReady } = await setup();
    await marks.lookup(SID);
    watchReady.open = false;
    status.push({ type: 'disconnect' });
    await tick();
    expect(marks.cacheActive).toBe(false);
    const reads = bucket.gets;
    await marks.lookup(SID);
    await marks.lookup(SID);
    expect(bucket.gets).toBe(reads + 2);
    expect(watches.at(-1)!.ended).toBe(true);
  });

  it('never serves from the cache before the watch started', async () => {
    const bucket = Object.assign(new FakeBucket(), { gets: 0 });
    const get = bucket.get.bind(bucket);
    bucket.get = (key: string) => {
      bucket.gets++;
      return get(key);
    };
    const marks = new NatsSessionMarks(
      bucket,
      { now: () => now, timeoutMs: 50 },
      {
        watch: {
          watch: () => new Promise(() => undefined), // never starts
          status: () => new Feed<{ type: string }>(),
        },
      },
    );
    await marks.markInitialized(SID, now + HOUR);
    await marks.lookup(SID);
    await marks.lookup(SID);
    expect(bucket.gets).toBe(2);
    expect(marks.cacheActive).toBe(false);
  });
});
