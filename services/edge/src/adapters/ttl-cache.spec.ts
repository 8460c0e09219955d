import { TtlCache } from './ttl-cache';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('TtlCache', () => {
  let now = 0;
  const cache = () => new TtlCache<string, number>({ ttlMs: 100, maxEntries: 2, clock: () => now });
  beforeEach(() => (now = 0));

  it('serves a value until its TTL has passed, then loads again', async () => {
    const c = cache();
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    expect(await c.get('a', load)).toBe(1);
    now = 99;
    expect(await c.get('a', load)).toBe(1);
    now = 100;
    expect(await c.get('a', load)).toBe(2);
  });

  it('shares one load between concurrent misses', async () => {
    const c = cache();
    const d = deferred<number>();
    let loads = 0;
    const load = () => {
      loads++;
      return d.promise;
    };
    const both = Promise.all([c.get('a', load), c.get('a', load)]);
    d.resolve(7);
    expect(await both).toEqual([7, 7]);
    expect(loads).toBe(1);
  });

  it('does not store a load that an invalidation disowned (read before the change)', async () => {
    const c = cache();
    const stale = deferred<number>();
    const first = c.get('a', () => stale.promise);
    c.invalidate('a');
    stale.resolve(1);
    expect(await first).toBe(1);
    expect(await c.get('a', () => Promise.resolve(2))).toBe(2);
  });

  it('keeps a value that no invalidation touched (the allowed neighbour)', async () => {
    const c = cache();
    await c.get('a', () => Promise.resolve(1));
    c.invalidate('b');
    expect(await c.get('a', () => Promise.resolve(2))).toBe(1);
  });

  it('does not cache a failed load', async () => {
    const c = cache();
    await expect(c.get('a', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await c.get('a', () => Promise.resolve(3))).toBe(3);
  });

  it('holds at most maxEntries keys, dropping the oldest', async () => {
    const c = cache();
    for (const [k, v] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      await c.get(k, () => Promise.resolve(v));
    expect(c.size).toBe(2);
    expect(await c.get('a', () => Promise.resolve(10))).toBe(10);
    expect(await c.get('c', () => Promise.resolve(30))).toBe(3);
  });

  it('invalidateAll drops everything', async () => {
    const c = cache();
    await c.get('a', () => Promise.resolve(1));
    c.invalidateAll();
    expect(c.size).toBe(0);
  });
});
