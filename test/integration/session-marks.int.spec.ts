import { randomBytes } from 'node:crypto';
import { describeSessionMarksConformance } from '@hcp/edge/testing';
import { describeIntegration, integrationEnv, restartNats } from '@hcp/platform/testing';
import { NatsSessionMarks } from '../../services/edge/src/protocol/nats-session-marks';
import {
  SignedSessionStore,
  type SessionKey,
} from '../../services/edge/src/protocol/session-store';

// An MCP session survives an edge restart and lands on any replica. The id is
// signed (any replica with the keys verifies it); `initialized` and `ended` live in a NATS KV bucket.
describeIntegration('session marks on NATS JetStream KV', () => {
  const keys: SessionKey[] = [{ id: 'k1', secret: randomBytes(32).toString('base64url') }];
  // A bucket of this run's own, so reruns and other suites never see each other's marks.
  const bucket = `hcp_session_marks_${randomBytes(4).toString('hex')}`;
  const opened: NatsSessionMarks[] = [];

  /** One edge replica (or one edge process lifetime): its own connection, the shared bucket. */
  async function replica(): Promise<{ marks: NatsSessionMarks; store: SignedSessionStore }> {
    const marks = await NatsSessionMarks.connect({
      servers: integrationEnv().natsUrl,
      name: 'session-marks-int',
      bucket,
      timeoutMs: 2000,
    });
    opened.push(marks);
    return { marks, store: new SignedSessionStore({ keys, marks }) };
  }

  afterAll(async () => {
    for (const m of opened) await m.close().catch(() => undefined);
  });

  it('a mark written on one replica is read on another', async () => {
    const a = await replica();
    const b = await replica();
    const id = await a.store.create('alice', '2025-11-25');
    // Before notifications/initialized, every replica says "not initialized".
    expect(await b.store.get(id)).toMatchObject({ state: 'active', initialized: false });
    await a.store.markInitialized(id);
    expect(await b.store.get(id)).toMatchObject({
      state: 'active',
      initialized: true,
      ownerPrincipalId: 'alice',
    });
    // The allowed neighbour's opposite: a session nobody marked stays uninitialized everywhere.
    const other = await b.store.create('alice', '2025-11-25');
    expect(await a.store.get(other)).toMatchObject({ state: 'active', initialized: false });
  });

  it('a session survives an edge restart (a new instance, a new connection)', async () => {
    const before = await replica();
    const id = await before.store.create('bob', '2025-06-18');
    await before.store.markInitialized(id);
    await before.marks.close();
    const after = await replica();
    expect(await after.store.get(id)).toMatchObject({ state: 'active', initialized: true });
  });

  it('an ended session stays ended: on every replica, after a restart, and re-marking does not revive it', async () => {
    const a = await replica();
    const b = await replica();
    const id = await a.store.create('alice', '2025-11-25');
    await a.store.markInitialized(id);
    await b.store.end(id);
    expect(await a.store.get(id)).toMatchObject({ state: 'ended', initialized: false });
    await a.store.markInitialized(id);
    expect(await b.store.get(id)).toMatchObject({ state: 'ended' });
    const restarted = await replica();
    expect(await restarted.store.get(id)).toMatchObject({ state: 'ended' });
  });

  it('marks survive a NATS restart (file storage) and the connection comes back', async () => {
    const a = await replica();
    const id = await a.store.create('alice', '2025-11-25');
    await a.store.markInitialized(id);
    await restartNats();
    let record = await a.store.get(id);
    for (let i = 0; i < 50 && !record.initialized; i++) {
      await new Promise((r) => setTimeout(r, 200));
      record = await a.store.get(id);
    }
    expect(record).toMatchObject({ state: 'active', initialized: true });
  });

  it('a session ended on another replica is refused here within the watch delay (cache, ADR 0005 §3)', async () => {
    const a = await replica();
    const b = await replica();
    for (let i = 0; i < 50 && !b.marks.cacheActive; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(b.marks.cacheActive).toBe(true);
    const id = await a.store.create('alice', '2025-11-25');
    const kept = await a.store.create('alice', '2025-11-25');
    await a.store.markInitialized(id);
    await a.store.markInitialized(kept);
    // b reads both once (now cached as initialized and not ended).
    expect(await b.store.get(id)).toMatchObject({ state: 'active', initialized: true });
    expect(await b.store.get(kept)).toMatchObject({ state: 'active', initialized: true });
    const delays: number[] = [];
    for (let round = 0; round < 5; round++) {
      const sid = round === 0 ? id : await a.store.create('alice', '2025-11-25');
      if (round > 0) {
        await a.store.markInitialized(sid);
        // Served from b's cache once read; then ended on a.
        for (let i = 0; i < 100 && !(await b.store.get(sid)).initialized; i++)
          await new Promise((r) => setTimeout(r, 5));
      }
      await a.store.end(sid);
      const endedAt = performance.now();
      let record = await b.store.get(sid);
      while (record.state !== 'ended' && performance.now() - endedAt < 2000) {
        await new Promise((r) => setImmediate(r));
        record = await b.store.get(sid);
      }
      delays.push(performance.now() - endedAt);
      expect(record.state).toBe('ended');
    }
    console.log(
      `session marks watch delay (end on replica a -> refused on replica b), ms: ${delays.map((d) => d.toFixed(2)).join(', ')}`,
    );
    expect(Math.max(...delays)).toBeLessThan(1000);
    // Neighbour: the session nobody ended is still served on b.
    expect(await b.store.get(kept)).toMatchObject({ state: 'active', initialized: true });
  });

  it('fails closed when NATS cannot be reached: not initialized, and writes refuse', async () => {
    const a = await replica();
    const id = await a.store.create('alice', '2025-11-25');
    await a.store.markInitialized(id);
    expect(await a.store.get(id)).toMatchObject({ state: 'active', initialized: true });
    await a.marks.close();
    // The replica's connection is gone: the same session reads as unusable, never as initialized.
    const record = await a.store.get(id);
    expect(record.initialized).toBe(false);
    expect(record.state).not.toBe('active');
    await expect(a.store.end(id)).rejects.toMatchObject({ reason: 'POLICY_UNAVAILABLE' });
  });

  it('the bucket TTL is bounded: the session TTL plus one hour', async () => {
    const { marks } = await replica();
    expect(marks.bucketTtlMs).toBe(25 * 60 * 60 * 1000);
  });

  it('refuses to bind a bucket whose TTL is shorter than a session', async () => {
    const short = `${bucket}_short`;
    const open = (sessionTtlMs?: number) =>
      NatsSessionMarks.connect({
        servers: integrationEnv().natsUrl,
        bucket: short,
        ...(sessionTtlMs === undefined ? {} : { sessionTtlMs }),
      }).then((m) => {
        opened.push(m);
        return m;
      });
    const created = await open(60_000);
    expect(created.bucketTtlMs).toBe(60_000 + 60 * 60 * 1000);
    // A 24 h session would outlive this bucket's marks: refused at start, not discovered later.
    await expect(open()).rejects.toMatchObject({ reason: 'INPUT_INVALID' });
    // Its allowed neighbour: the same bucket is fine for sessions it can hold.
    await expect(open(60_000)).resolves.toBeInstanceOf(NatsSessionMarks);
  });
});

// The behaviour the in-memory marks show in the unit tier, on the real shared store.
describeIntegration('session marks conformance on NATS JetStream KV', () => {
  const bucket = `hcp_session_marks_conf_${randomBytes(4).toString('hex')}`;
  describeSessionMarksConformance('NATS JetStream KV', async (now) => {
    const marks = await NatsSessionMarks.connect({
      servers: integrationEnv().natsUrl,
      name: 'session-marks-conformance',
      bucket,
      timeoutMs: 2000,
      now,
    });
    return { marks, close: () => marks.close() };
  });
});
