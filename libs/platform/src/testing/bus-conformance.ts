import { randomBytes } from 'node:crypto';
import type { BusMessage, BusStatus, DurableMessage, EventBus } from '../bus/event-bus';

/** What a conformance run may do to the server behind the bus (real servers only). */
export interface BusConformanceControls {
  /** Stops and starts the server on the same address and store. */
  readonly restartServer?: () => Promise<void>;
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * Polls `probe` until it returns a value (not undefined); fails with `what` after `timeoutMs`.
 * The one waiting helper of the test suites.
 */
export async function waitFor<T>(
  what: string | (() => string),
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls until `check` returns true; fails with `what` after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(what, async () => ((await check()) ? true : undefined), timeoutMs);
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The one behaviour both EventBus implementations must show (SpiceDB-style
 * conformance): run it against InProcessBus in unit tests and against a real
 * NATS JetStream server in the integration tier. Names are unique per test, so
 * a shared server needs no cleanup.
 */
export function describeEventBusConformance(
  name: string,
  makeBus: () => Promise<EventBus>,
  controls: BusConformanceControls = {},
): void {
  describe(`EventBus conformance: ${name}`, () => {
    let bus: EventBus;
    let p: string; // unique subject prefix / stream name stem for this test
    const open: EventBus[] = [];

    beforeEach(async () => {
      p = `t${randomBytes(5).toString('hex')}`;
      bus = await makeBus();
      open.push(bus);
    });

    afterEach(async () => {
      for (const b of open.splice(0)) await b.close();
    });

    it('delivers to matching subscribers, with * and > wildcards', async () => {
      const exact: string[] = [];
      const star: string[] = [];
      const tail: string[] = [];
      await bus.subscribe(`${p}.a.b`, (m) => void exact.push(m.subject));
      await bus.subscribe(`${p}.*.b`, (m) => void star.push(m.subject));
      await bus.subscribe(`${p}.>`, (m) => void tail.push(m.subject));
      await bus.publish(`${p}.a.b`, text('1'));
      await bus.publish(`${p}.x.b`, text('2'));
      await bus.publish(`${p}.a.b.c`, text('3'));
      await bus.publish(`${p}`, text('4')); // `>` needs at least one more token
      await eventually(() => tail.length === 3, 'three messages on >');
      await pause(50);
      expect(exact).toEqual([`${p}.a.b`]);
      expect(star.sort()).toEqual([`${p}.a.b`, `${p}.x.b`]);
      expect(tail.sort()).toEqual([`${p}.a.b`, `${p}.a.b.c`, `${p}.x.b`]);
    });

    it('round-trips payload and headers', async () => {
      const got: BusMessage[] = [];
      await bus.subscribe(`${p}.h`, (m) => void got.push(m));
      await bus.publish(`${p}.h`, text('payload'), { 'x-one': '1', 'x-two': 'two words' });
      await eventually(() => got.length === 1, 'the message');
      expect(got[0]?.subject).toBe(`${p}.h`);
      expect(str(got[0]!.data)).toBe('payload');
      expect(got[0]?.headers).toMatchObject({ 'x-one': '1', 'x-two': 'two words' });
    });

    it('stops delivering after unsubscribe, and a failing subscriber hurts nobody', async () => {
      const got: string[] = [];
      await bus.subscribe(`${p}.u`, () => {
        throw new Error('subscriber bug');
      });
      const sub = await bus.subscribe(`${p}.u`, (m) => void got.push(str(m.data)));
      await bus.publish(`${p}.u`, text('before'));
      await eventually(() => got.length === 1, 'the first message');
      await sub.unsubscribe();
      await bus.publish(`${p}.u`, text('after'));
      await pause(150);
      expect(got).toEqual(['before']);
    });

    it('ensureStream is idempotent and can change subjects', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.one`] });
      await bus.ensureStream({ name: p, subjects: [`${p}.one`] });
      await expect(bus.publishDurable(`${p}.one`, text('a'), { msgId: 'm1' })).resolves.toEqual({
        seq: 1,
        duplicate: false,
      });
      await bus.ensureStream({ name: p, subjects: [`${p}.one`, `${p}.two`] });
      await expect(bus.publishDurable(`${p}.two`, text('b'), { msgId: 'm2' })).resolves.toEqual({
        seq: 2,
        duplicate: false,
      });
    });

    it('publishDurable stores a repeated msgId once', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      const first = await bus.publishDurable(`${p}.e`, text('x'), { msgId: 'same' });
      const again = await bus.publishDurable(`${p}.e`, text('x'), { msgId: 'same' });
      const other = await bus.publishDurable(`${p}.e`, text('y'), { msgId: 'other' });
      expect(first).toEqual({ seq: 1, duplicate: false });
      expect(again).toEqual({ seq: 1, duplicate: true });
      expect(other).toEqual({ seq: 2, duplicate: false });

      const got: string[] = [];
      const sub = await bus.consumeDurable({ stream: p, durable: 'd' }, (m) => {
        got.push(str(m.data));
        return Promise.resolve();
      });
      await eventually(() => got.length >= 2, 'both stored messages');
      await pause(100);
      await sub.unsubscribe();
      expect(got).toEqual(['x', 'y']);
    });

    it('publishDurable to a subject no stream holds rejects', async () => {
      await expect(
        bus.publishDurable(`${p}.nowhere`, text('x'), { msgId: 'm' }),
      ).rejects.toBeDefined();
    });

    it('consumeDurable delivers in order with seq, subject and headers, and filters', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      for (let i = 1; i <= 5; i++)
        await bus.publishDurable(`${p}.${i % 2 === 0 ? 'even' : 'odd'}`, text(String(i)), {
          msgId: `m${i}`,
          headers: { 'x-i': String(i) },
        });
      const all: DurableMessage[] = [];
      const odd: string[] = [];
      const s1 = await bus.consumeDurable({ stream: p, durable: 'all' }, (m) => {
        all.push(m);
        return Promise.resolve();
      });
      const s2 = await bus.consumeDurable(
        { stream: p, durable: 'odd', filterSubject: `${p}.odd` },
        (m) => {
          odd.push(str(m.data));
          return Promise.resolve();
        },
      );
      await eventually(() => all.length === 5 && odd.length === 3, 'all and odd messages');
      await s1.unsubscribe();
      await s2.unsubscribe();
      expect(all.map((m) => str(m.data))).toEqual(['1', '2', '3', '4', '5']);
      expect(all.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(all[1]).toMatchObject({ subject: `${p}.even`, redelivered: false });
      expect(all[1]?.headers).toMatchObject({ 'x-i': '2' });
      expect(odd).toEqual(['1', '3', '5']);
    });

    it('redelivers a message whose handler threw, before any later one', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      for (const v of ['a', 'b', 'c']) await bus.publishDurable(`${p}.r`, text(v), { msgId: v });
      const seen: { v: string; redelivered: boolean }[] = [];
      let failed = false;
      const sub = await bus.consumeDurable({ stream: p, durable: 'r', ackWaitMs: 2000 }, (m) => {
        const v = str(m.data);
        seen.push({ v, redelivered: m.redelivered });
        if (v === 'b' && !failed) {
          failed = true;
          return Promise.reject(new Error('transient'));
        }
        return Promise.resolve();
      });
      // Delivery is at-least-once (JetStream may hand an acknowledged message out once more
      // around a pull that expired on the client), so the contract checked is: nothing lost,
      // the failed message is redelivered, and no later message is delivered before that.
      await eventually(
        () => seen.some((x) => x.v === 'c'),
        () => `delivery of c (seen ${JSON.stringify(seen)})`,
        15_000,
      );
      await pause(300);
      await sub.unsubscribe();
      const firstC = seen.findIndex((x) => x.v === 'c');
      expect(seen[0]).toEqual({ v: 'a', redelivered: false });
      expect(seen[1]).toEqual({ v: 'b', redelivered: false });
      expect(seen.slice(2, firstC)).toContainEqual({ v: 'b', redelivered: true });
      expect(seen.slice(0, firstC).every((x) => x.v === 'a' || x.v === 'b')).toBe(true);
      expect(seen.slice(firstC).every((x) => x.v === 'c')).toBe(true);
    });

    it('consumeDurableBatch hands over waiting messages in order, at most maxBatch at once', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      for (let i = 1; i <= 10; i++)
        await bus.publishDurable(`${p}.b`, text(String(i)), { msgId: `m${i}` });
      const batches: string[][] = [];
      const sub = await bus.consumeDurableBatch({ stream: p, durable: 'b', maxBatch: 4 }, (ms) => {
        batches.push(ms.map((m) => str(m.data)));
        return Promise.resolve();
      });
      await eventually(() => batches.flat().length >= 10, 'ten messages');
      // A message published while consuming still comes, without waiting for a full batch.
      await bus.publishDurable(`${p}.b`, text('11'), { msgId: 'm11' });
      await eventually(() => batches.flat().length >= 11, 'the eleventh');
      await pause(100);
      await sub.unsubscribe();
      expect(batches.flat()).toEqual(Array.from({ length: 11 }, (_, i) => String(i + 1)));
      expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(4);
      expect(batches.some((b) => b.length > 1)).toBe(true);
    });

    it('consumeDurableBatch hands over full batches while a backlog waits, arrivals included', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      for (let i = 1; i <= 20; i++)
        await bus.publishDurable(`${p}.g`, text(String(i)), { msgId: `m${i}` });
      const batches: string[][] = [];
      const sub = await bus.consumeDurableBatch(
        { stream: p, durable: 'g', maxBatch: 8 },
        async (ms) => {
          batches.push(ms.map((m) => str(m.data)));
          // Five more arrive while the first batch is being handled.
          if (batches.length === 1)
            for (let i = 21; i <= 25; i++)
              await bus.publishDurable(`${p}.g`, text(String(i)), { msgId: `m${i}` });
        },
      );
      await eventually(() => batches.flat().length >= 25, 'twenty-five messages');
      await pause(100);
      await sub.unsubscribe();
      expect(batches.flat()).toEqual(Array.from({ length: 25 }, (_, i) => String(i + 1)));
      expect(batches.map((b) => b.length)).toEqual([8, 8, 8, 1]);
    });

    it('consumeDurableBatch redelivers a whole failed batch before any later message', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      for (const v of ['a', 'b', 'c', 'd'])
        await bus.publishDurable(`${p}.f`, text(v), { msgId: v });
      const seen: { vs: string[]; redelivered: boolean[] }[] = [];
      let failed = false;
      const sub = await bus.consumeDurableBatch(
        { stream: p, durable: 'f', maxBatch: 2, ackWaitMs: 2000 },
        (ms) => {
          seen.push({ vs: ms.map((m) => str(m.data)), redelivered: ms.map((m) => m.redelivered) });
          if (ms.some((m) => str(m.data) === 'b') && !failed) {
            failed = true;
            return Promise.reject(new Error('transient'));
          }
          return Promise.resolve();
        },
      );
      await eventually(
        () => seen.some((x) => x.vs.includes('d')),
        () => `delivery of d (seen ${JSON.stringify(seen)})`,
        15_000,
      );
      await pause(300);
      await sub.unsubscribe();
      const order = seen.flatMap((x) => x.vs);
      const firstC = order.indexOf('c');
      expect(seen[0]).toEqual({ vs: ['a', 'b'], redelivered: [false, false] });
      // Both of the failed batch come back, marked redelivered, before c.
      const again = seen.slice(1).find((x) => x.vs.includes('b'));
      expect(again?.vs).toEqual(['a', 'b']);
      expect(again?.redelivered).toEqual([true, true]);
      expect(order.slice(0, firstC).every((v) => v === 'a' || v === 'b')).toBe(true);
      expect(new Set(order)).toEqual(new Set(['a', 'b', 'c', 'd']));
    });

    it('a durable keeps its position across unsubscribe and resubscribe', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      const got: string[] = [];
      const handler = (m: DurableMessage) => {
        got.push(str(m.data));
        return Promise.resolve();
      };
      for (const v of ['1', '2', '3']) await bus.publishDurable(`${p}.k`, text(v), { msgId: v });
      const first = await bus.consumeDurable({ stream: p, durable: 'keep' }, handler);
      await eventually(() => got.length === 3, 'first three');
      await first.unsubscribe();
      for (const v of ['4', '5']) await bus.publishDurable(`${p}.k`, text(v), { msgId: v });
      await pause(100);
      expect(got).toEqual(['1', '2', '3']);
      const second = await bus.consumeDurable({ stream: p, durable: 'keep' }, handler);
      await eventually(() => got.length === 5, 'the two published while away');
      await pause(100);
      await second.unsubscribe();
      expect(got).toEqual(['1', '2', '3', '4', '5']);
    });

    it('refuses a second concurrent consumer of one durable in one bus', async () => {
      await bus.ensureStream({ name: p, subjects: [`${p}.>`] });
      const sub = await bus.consumeDurable({ stream: p, durable: 'one' }, () => Promise.resolve());
      await expect(
        bus.consumeDurable({ stream: p, durable: 'one' }, () => Promise.resolve()),
      ).rejects.toThrow(/already being consumed/);
      await sub.unsubscribe();
    });

    it('close reports closed, stops deliveries and refuses publishing', async () => {
      const statuses: BusStatus[] = [];
      bus.onStatus((s) => statuses.push(s));
      expect(bus.isConnected()).toBe(true);
      await bus.subscribe(`${p}.c`, () => undefined);
      await bus.close();
      await bus.close(); // idempotent
      expect(bus.isConnected()).toBe(false);
      await eventually(() => statuses.includes('closed'), 'closed status');
      await expect(bus.publish(`${p}.c`, text('late'))).rejects.toBeDefined();
    });

    const restart = controls.restartServer;
    if (restart !== undefined) {
      it('survives a server restart: disconnected, reconnected, subscriptions and durables resume', async () => {
        await bus.ensureStream({ name: p, subjects: [`${p}.d.>`] });
        const statuses: BusStatus[] = [];
        bus.onStatus((s) => statuses.push(s));
        const core: string[] = [];
        const durable: string[] = [];
        await bus.subscribe(`${p}.core`, (m) => void core.push(str(m.data)));
        const dsub = await bus.consumeDurable({ stream: p, durable: 'restart' }, (m) => {
          durable.push(str(m.data));
          return Promise.resolve();
        });
        await bus.publishDurable(`${p}.d.x`, text('before'), { msgId: 'before' });
        await eventually(() => durable.length === 1, 'durable before restart');

        await restart();
        await eventually(() => statuses.includes('reconnected'), 'reconnected status', 30_000);
        expect(statuses.indexOf('disconnected')).toBeGreaterThanOrEqual(0);
        expect(statuses.indexOf('disconnected')).toBeLessThan(statuses.indexOf('reconnected'));
        expect(bus.isConnected()).toBe(true);

        await bus.publish(`${p}.core`, text('after'));
        await eventually(() => core.includes('after'), 'core message after restart');
        // JetStream may need a moment after the server is back before it takes writes.
        await retry(() => bus.publishDurable(`${p}.d.x`, text('after'), { msgId: 'after' }));
        await eventually(() => durable.length === 2, 'durable after restart', 20_000);
        expect(durable).toEqual(['before', 'after']);
        await dsub.unsubscribe();
      }, 60_000);
    }
  });
}

async function retry<T>(fn: () => Promise<T>, attempts = 30): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err: unknown) {
      if (i >= attempts) throw err;
      await pause(250);
    }
  }
}
