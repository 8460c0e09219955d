import { randomBytes } from 'node:crypto';
import { SignedSessionStore, type SessionMarks } from '../protocol/session-store';

/** One implementation under test, built on the suite's clock; `close` releases what it opened. */
export interface SessionMarksUnderTest {
  readonly marks: SessionMarks;
  close?(): Promise<void>;
}

/** A fresh sid of the shape the signed store mints (22 base64url characters). */
const newSid = () => randomBytes(16).toString('base64url');

const HOUR = 3_600_000;

/**
 * The behaviour every SessionMarks implementation must show (SpiceDB-style conformance): run it
 * against the in-memory marks in the unit tier and against the NATS JetStream KV marks in the
 * integration tier, so the fake the unit specs use cannot drift from what replicas share. Sids
 * are unique per test, so a shared bucket needs no cleanup. `make` receives the suite's clock
 * (epoch ms, starting at the wall clock so a real bucket's TTL check holds).
 */
export function describeSessionMarksConformance(
  name: string,
  make: (now: () => number) => Promise<SessionMarksUnderTest>,
): void {
  describe(`SessionMarks conformance: ${name}`, () => {
    let now = Date.now();
    const clock = () => now;
    let subject: SessionMarksUnderTest;
    let marks: SessionMarks;

    beforeEach(async () => {
      now = Date.now();
      subject = await make(clock);
      marks = subject.marks;
    });

    afterEach(async () => {
      await subject.close?.();
    });

    /** Both facts, asked both ways; the one-read lookup must agree with the two questions. */
    const facts = async (sid: string) => {
      const initialized = await marks.isInitialized(sid);
      const ended = await marks.isEnded(sid);
      if (marks.lookup !== undefined)
        expect(await marks.lookup(sid)).toEqual({ ended, initialized });
      return { initialized, ended };
    };

    it('an unmarked sid is neither initialized nor ended', async () => {
      expect(await facts(newSid())).toEqual({ initialized: false, ended: false });
    });

    it('markInitialized is seen, is idempotent, and marks only its own sid', async () => {
      const sid = newSid();
      const other = newSid();
      await marks.markInitialized(sid, now + HOUR);
      await marks.markInitialized(sid, now + HOUR);
      expect(await facts(sid)).toEqual({ initialized: true, ended: false });
      expect(await facts(other)).toEqual({ initialized: false, ended: false });
    });

    it('ended wins: an ended session is not initialized, and marking it again does not revive it', async () => {
      const sid = newSid();
      await marks.markInitialized(sid, now + HOUR);
      await marks.markEnded(sid, now + HOUR);
      expect(await facts(sid)).toEqual({ initialized: false, ended: true });
      await marks.markInitialized(sid, now + HOUR);
      expect(await facts(sid)).toEqual({ initialized: false, ended: true });
      await marks.markEnded(sid, now + HOUR);
      expect(await facts(sid)).toEqual({ initialized: false, ended: true });
    });

    it('a session ended before it was initialized stays ended', async () => {
      const sid = newSid();
      await marks.markEnded(sid, now + HOUR);
      await marks.markInitialized(sid, now + HOUR);
      expect(await facts(sid)).toEqual({ initialized: false, ended: true });
    });

    it('a mark lapses at the expiry it was written with, not before', async () => {
      const initialized = newSid();
      const ended = newSid();
      await marks.markInitialized(initialized, now + 1000);
      await marks.markEnded(ended, now + 1000);
      now += 999;
      expect(await facts(initialized)).toEqual({ initialized: true, ended: false });
      expect(await facts(ended)).toEqual({ initialized: false, ended: true });
      now += 1;
      expect(await facts(initialized)).toEqual({ initialized: false, ended: false });
      expect(await facts(ended)).toEqual({ initialized: false, ended: false });
    });

    it('behind the signed session store: active, then initialized, then ended', async () => {
      const store = new SignedSessionStore({
        keys: [{ id: 'k1', secret: randomBytes(32) }],
        marks,
        now: clock,
      });
      const id = await store.create('alice', '2025-11-25');
      expect(await store.get(id)).toMatchObject({ state: 'active', initialized: false });
      await store.markInitialized(id);
      expect(await store.get(id)).toMatchObject({
        state: 'active',
        initialized: true,
        ownerPrincipalId: 'alice',
      });
      await store.end(id);
      expect(await store.get(id)).toMatchObject({ state: 'ended', initialized: false });
    });
  });
}
