import { InMemorySessionMarks, SignedSessionStore, type SessionKey } from './session-store';

const K1: SessionKey = { id: 'k1', secret: 'session-key-one-at-least-32-bytes-long!!' };
const K2: SessionKey = { id: 'k2', secret: 'session-key-two-at-least-32-bytes-long!!' };
const T0 = 1_750_000_000_000;

function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** Re-encodes a session id's payload with a change, keeping the original MAC. */
function withPayload(id: string, change: (p: Record<string, unknown>) => void): string {
  const [body, mac] = id.split('.') as [string, string];
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  change(payload);
  return `${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${mac}`;
}

describe('SignedSessionStore', () => {
  it('round-trips owner, version and lifetime; starts uninitialized', async () => {
    const c = clock();
    const store = new SignedSessionStore({ keys: [K1], ttlMs: 60_000, now: c.now });
    const id = await store.create('alice', '2025-11-25');
    expect(id).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const rec = await store.get(id);
    expect(rec).toMatchObject({
      state: 'active',
      ownerPrincipalId: 'alice',
      negotiatedVersion: '2025-11-25',
      initialized: false,
      issuedAt: T0,
      expiresAt: T0 + 60_000,
    });
    expect(rec.sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(id).not.toContain(rec.sid); // the sid travels inside the encoded payload only
  });

  it('mints a fresh random sid for every session', async () => {
    const store = new SignedSessionStore({ keys: [K1] });
    const sids = new Set<string | undefined>();
    for (let i = 0; i < 50; i++) sids.add((await store.get(await store.create('a', 'v'))).sid);
    expect(sids.size).toBe(50);
  });

  it('survives a restart: a second store with the same keyring verifies the id', async () => {
    const c = clock();
    const id = await new SignedSessionStore({ keys: [K1], now: c.now }).create('alice', 'v1');
    const replica = new SignedSessionStore({ keys: [K1], now: c.now });
    await expect(replica.get(id)).resolves.toMatchObject({
      state: 'active',
      ownerPrincipalId: 'alice',
    });
  });

  it.each<[string, (id: string) => string]>([
    ['a changed owner', (id) => withPayload(id, (p) => (p.sub = 'mallory'))],
    ['a changed version', (id) => withPayload(id, (p) => (p.ver = '2025-03-26'))],
    ['a longer lifetime', (id) => withPayload(id, (p) => (p.exp = (p.exp as number) + 1e9))],
    ['a swapped key id', (id) => withPayload(id, (p) => (p.kid = 'k2'))],
    [
      'a flipped MAC bit',
      (id) => `${id.slice(0, -2)}${id.at(-2) === 'A' ? 'B' : 'A'}${id.slice(-1)}`,
    ],
    ['a truncated MAC', (id) => id.slice(0, -4)],
    ['no MAC', (id) => id.split('.')[0]!],
    ['an empty string', () => ''],
    ['garbage', () => 'not-a-session'],
    [
      'a non-JSON payload',
      (id) => `${Buffer.from('xx').toString('base64url')}.${id.split('.')[1]}`,
    ],
    ['an oversized id', (id) => `${'A'.repeat(2000)}.${id.split('.')[1]}`],
    ['a raw sid', () => 'AAAAAAAAAAAAAAAAAAAAAA'],
  ])('reads an id with %s as unknown, revealing nothing', async (_, tamper) => {
    const store = new SignedSessionStore({ keys: [K1, K2] });
    const id = await store.create('alice', '2025-11-25');
    await expect(store.get(id)).resolves.toMatchObject({ state: 'active' });
    await expect(store.get(tamper(id))).resolves.toEqual({ state: 'unknown', initialized: false });
  });

  it('reads an id signed by a key outside the keyring as unknown', async () => {
    const foreign = await new SignedSessionStore({ keys: [K2] }).create('alice', 'v');
    const sameKidOtherSecret = await new SignedSessionStore({
      keys: [{ id: 'k1', secret: 'a-different-secret-under-the-same-kid!!' }],
    }).create('alice', 'v');
    const store = new SignedSessionStore({ keys: [K1] });
    await expect(store.get(foreign)).resolves.toMatchObject({ state: 'unknown' });
    await expect(store.get(sameKidOtherSecret)).resolves.toMatchObject({ state: 'unknown' });
  });

  it('expires at exp exactly, keeping the authentic owner for the foreign check', async () => {
    const c = clock();
    const store = new SignedSessionStore({ keys: [K1], ttlMs: 1000, now: c.now });
    const id = await store.create('alice', 'v');
    await store.markInitialized(id);
    c.advance(999);
    await expect(store.get(id)).resolves.toMatchObject({ state: 'active', initialized: true });
    c.advance(1);
    await expect(store.get(id)).resolves.toMatchObject({
      state: 'expired',
      ownerPrincipalId: 'alice',
      initialized: false,
    });
  });

  it('rotates: a new signing key, the old key still verifies, a removed key does not', async () => {
    const old = new SignedSessionStore({ keys: [K1] });
    const oldId = await old.create('alice', 'v');
    const rotated = new SignedSessionStore({ keys: [K2, K1] });
    const newId = await rotated.create('bob', 'v');
    await expect(rotated.get(oldId)).resolves.toMatchObject({
      state: 'active',
      ownerPrincipalId: 'alice',
    });
    await expect(rotated.get(newId)).resolves.toMatchObject({
      state: 'active',
      ownerPrincipalId: 'bob',
    });
    // Only the new key signs now; the old store cannot read the new id.
    await expect(old.get(newId)).resolves.toMatchObject({ state: 'unknown' });
    const retired = new SignedSessionStore({ keys: [K2] });
    await expect(retired.get(oldId)).resolves.toMatchObject({ state: 'unknown' });
  });

  it('tracks initialize and end; an ended session stays ended', async () => {
    const store = new SignedSessionStore({ keys: [K1] });
    const id = await store.create('alice', 'v');
    await store.markInitialized(id);
    await expect(store.get(id)).resolves.toMatchObject({ state: 'active', initialized: true });
    await store.end(id);
    await expect(store.get(id)).resolves.toMatchObject({ state: 'ended', initialized: false });
    await store.markInitialized(id);
    await expect(store.get(id)).resolves.toMatchObject({ state: 'ended' });
  });

  it('ignores marks for forged ids', async () => {
    const marks = new InMemorySessionMarks();
    const store = new SignedSessionStore({ keys: [K1], marks });
    await store.markInitialized('forged.id');
    await store.end('forged.id');
    expect(marks.size()).toEqual({ initialized: 0, ended: 0 });
  });

  it('refuses weak or ambiguous keyrings at construction', () => {
    expect(() => new SignedSessionStore({ keys: [] })).toThrow(/at least one key/);
    expect(() => new SignedSessionStore({ keys: [{ id: 'k', secret: 'short' }] })).toThrow(
      /32 bytes/,
    );
    expect(() => new SignedSessionStore({ keys: [K1, K1] })).toThrow(/twice/);
    expect(() => new SignedSessionStore({ keys: [{ ...K1, id: 'bad id!' }] })).toThrow(/invalid/);
  });
});

describe('InMemorySessionMarks', () => {
  it('forgets entries at their expiry and stays within its bound', async () => {
    const c = clock();
    const marks = new InMemorySessionMarks({ maxEntries: 2, now: c.now });
    await marks.markInitialized('a', T0 + 100);
    await marks.markInitialized('b', T0 + 200);
    await marks.markInitialized('c', T0 + 300); // full: the entry nearest its expiry goes
    expect(marks.size().initialized).toBe(2);
    await expect(marks.isInitialized('a')).resolves.toBe(false);
    await expect(marks.isInitialized('c')).resolves.toBe(true);
    c.advance(250);
    await expect(marks.isInitialized('b')).resolves.toBe(false);
    await marks.markInitialized('d', T0 + 1000); // pruning the expired 'b' makes room
    await expect(marks.isInitialized('c')).resolves.toBe(true);
    await expect(marks.isInitialized('d')).resolves.toBe(true);
  });
});
