import { HcpError, type AuditEntry } from '@hcp/core';
import { audit, auditEntryFromProto } from '@hcp/proto';
import type { BusHeaders, DurableMessage, PublishAck } from '../bus/event-bus';
import { InProcessBus } from '../bus/in-process-bus';
import { mapAuditEntryText, unescapeAuditText } from './audit-text';
import {
  AUDIT_BATCH_SUBJECT,
  AUDIT_STREAM,
  AUDIT_TEXT_ESCAPED,
  AUDIT_TEXT_HEADER,
  auditBatchMessage,
  auditEventMessage,
  auditSubject,
  createAuditPublisher,
  decodeAuditBatch,
  type AuditPublisher,
  type AuditPublisherOptions,
} from './audit-publisher';

function entry(n: number, over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: `aud_${String(n).padStart(4, '0')}`,
    time: 1_800_000_000_000 + n,
    decisionId: `dec_${n}`,
    principalId: 'agent-1',
    endpointFamily: 'tools/call',
    capabilityId: 'fs/read',
    outcome: n % 2 === 0 ? 'allow' : 'deny',
    reason: n % 2 === 0 ? 'ALLOWED' : 'NO_MATCHING_GRANT',
    handleIds: [],
    ...over,
  };
}

/** An in-process bus whose durable publishes can be made to fail, stall, or lose their ack. */
class FlakyBus extends InProcessBus {
  mode: 'ok' | 'down' | 'stall' | 'lose-ack' = 'ok';
  attempts = 0;
  override publishDurable(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: BusHeaders },
  ): Promise<PublishAck> {
    this.attempts++;
    switch (this.mode) {
      case 'down':
        return Promise.reject(new Error('connection refused'));
      case 'stall':
        return new Promise<PublishAck>(() => undefined);
      case 'lose-ack':
        // Stored, but the acknowledgement never reaches the publisher (the classic retry hazard).
        this.mode = 'ok';
        return super
          .publishDurable(subject, data, options)
          .then(() => Promise.reject(new Error('ack lost')));
      case 'ok':
        return super.publishDurable(subject, data, options);
    }
  }
}

/** One entry as it arrived: its decoded event, whether it was marked escaped, and its message. */
interface Arrived {
  readonly event: audit.AuditEvent;
  readonly escaped: boolean;
  readonly msg: DurableMessage;
}

/** The entries of one message: a batch's frames in order, or the single event it carries. */
function unpack(msg: DurableMessage): Arrived[] {
  if (msg.subject !== AUDIT_BATCH_SUBJECT)
    return [
      {
        event: audit.AuditEvent.decode(msg.data),
        escaped: msg.headers[AUDIT_TEXT_HEADER] === AUDIT_TEXT_ESCAPED,
        msg,
      },
    ];
  return decodeAuditBatch(msg.data).frames.map((f) => ({
    event: audit.AuditEvent.decode(f.event),
    escaped: f.textEscaped,
    msg,
  }));
}

/** Everything the stream holds, via a durable consumer, once it holds `expected` entries. */
async function drain(bus: InProcessBus, expected: number): Promise<DurableMessage[]> {
  const got: DurableMessage[] = [];
  let entries = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await bus.consumeDurable({ stream: AUDIT_STREAM, durable: 'test' }, (m) => {
    got.push(m);
    entries += unpack(m).length;
    if (entries === expected) done();
    return Promise.resolve();
  });
  await finished;
  // Give a duplicate, if any, the chance to show up.
  await new Promise((r) => setTimeout(r, 20));
  await sub.unsubscribe();
  return got;
}

/** The reason code of what `fn` throws, or undefined when it does not throw an HcpError. */
function refusal(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err: unknown) {
    return err instanceof HcpError ? err.reason : undefined;
  }
  return undefined;
}

const arrived = (msgs: DurableMessage[]) => msgs.flatMap(unpack);
const ids = (msgs: DurableMessage[]) =>
  arrived(msgs).map((a) => auditEntryFromProto(a.event.entry!).id);

// Every behaviour a caller sees is the same with one message per entry and with batches.
describe.each([
  ['one message per entry', false],
  ['batches', true],
])('audit publisher (%s)', (_mode, batching) => {
  let bus: FlakyBus;
  let started: AuditPublisher[];
  const start = async (options: Omit<AuditPublisherOptions, 'source'> = {}) => {
    const p = await createAuditPublisher(bus, { source: 'edge', batching, ...options });
    started.push(p);
    return p;
  };
  beforeEach(() => {
    bus = new FlakyBus();
    started = [];
  });
  afterEach(async () => {
    for (const p of started) await p.close(100);
    await bus.close();
  });

  it('maps each endpoint family to its subject', () => {
    expect(auditSubject('tools/call')).toBe('hcp.audit.tools_call');
    expect(auditSubject('handle/peek')).toBe('hcp.audit.handle_peek');
    expect(auditSubject('protocol')).toBe('hcp.audit.protocol');
  });

  it('delivers in order, as AuditEvent with the source, on the family subject', async () => {
    const pub = await start();
    const entries = Array.from({ length: 50 }, (_, i) =>
      entry(i, i % 5 === 0 ? { endpointFamily: 'handle/peek' } : {}),
    );
    for (const e of entries) pub.record(e);
    await pub.flush();
    expect(pub.pending).toBe(0);
    const msgs = await drain(bus, 50);
    expect(ids(msgs)).toEqual(entries.map((e) => e.id));
    const all = arrived(msgs);
    const first = all[0]!.event;
    expect(first.source).toBe('edge');
    expect(first.publishedAt?.seconds).toBeGreaterThan(0);
    expect(auditEntryFromProto(first.entry!)).toEqual(entries[0]);
    if (batching) {
      // Fewer messages than entries, each a batch with its batch id as msgId.
      expect(msgs.length).toBeLessThan(50);
      for (const m of msgs) expect(m.subject).toBe(AUDIT_BATCH_SUBJECT);
    } else {
      expect(msgs).toHaveLength(50);
      expect(msgs[0]!.subject).toBe('hcp.audit.handle_peek');
      expect(msgs[1]!.subject).toBe('hcp.audit.tools_call');
    }
  });

  it('keeps entries while the bus is down and delivers them, in order, once it is back', async () => {
    const pub = await start({ retryMs: 5, maxRetryMs: 20 });
    bus.mode = 'down';
    for (let i = 0; i < 10; i++) pub.record(entry(i));
    await new Promise((r) => setTimeout(r, 60));
    expect(pub.pending).toBe(10);
    expect(bus.attempts).toBeGreaterThan(1);
    bus.mode = 'ok';
    await pub.flush(2000);
    expect(ids(await drain(bus, 10))).toEqual(Array.from({ length: 10 }, (_, i) => entry(i).id));
  });

  it('stores an entry once when a publish is retried after its ack was lost (msgId dedupes)', async () => {
    const pub = await start({ retryMs: 5 });
    bus.mode = 'lose-ack';
    pub.record(entry(1));
    pub.record(entry(2));
    await pub.flush(2000);
    // One entry per message: both pipelined, the first resent. Batches: one batch, resent.
    expect(bus.attempts).toBe(batching ? 2 : 3);
    const msgs = await drain(bus, 2);
    expect(msgs).toHaveLength(batching ? 1 : 2);
    expect(ids(msgs)).toEqual([entry(1).id, entry(2).id]);
  });

  it('treats a stalled publish as failed and retries it', async () => {
    const pub = await start({ retryMs: 5, publishTimeoutMs: 30 });
    bus.mode = 'stall';
    pub.record(entry(1));
    await new Promise((r) => setTimeout(r, 50));
    expect(pub.pending).toBe(1);
    bus.mode = 'ok';
    await pub.flush(2000);
    expect(ids(await drain(bus, 1))).toEqual([entry(1).id]);
  });

  it('refuses with AUDIT_UNAVAILABLE when the buffer is full, and accepts again once drained', async () => {
    const pub = await start({ maxBuffered: 3, retryMs: 5 });
    bus.mode = 'down';
    for (let i = 0; i < 3; i++) pub.record(entry(i));
    expect(pub.available()).toBe(false);
    expect(refusal(() => pub.record(entry(3)))).toBe('AUDIT_UNAVAILABLE');
    expect(pub.pending).toBe(3);
    bus.mode = 'ok';
    await pub.flush(2000);
    expect(pub.available()).toBe(true);
    pub.record(entry(4));
    await pub.flush(2000);
    expect(ids(await drain(bus, 4))).toEqual([0, 1, 2, 4].map((i) => entry(i).id));
  });

  it('flush waits for delivery and rejects with AUDIT_UNAVAILABLE after its timeout', async () => {
    const pub = await start({ retryMs: 5 });
    await expect(pub.flush(10)).resolves.toBeUndefined(); // nothing accepted yet
    bus.mode = 'down';
    pub.record(entry(1));
    await expect(pub.flush(50)).rejects.toMatchObject({ reason: 'AUDIT_UNAVAILABLE' });
    let flushed = false;
    const f = pub.flush(2000).then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false);
    bus.mode = 'ok';
    await f;
    expect(pub.pending).toBe(0);
  });

  it('starts while the stream cannot be created, and creates it once the bus recovers', async () => {
    const ensure = jest
      .spyOn(bus, 'ensureStream')
      .mockRejectedValueOnce(new Error('no responders'))
      .mockRejectedValueOnce(new Error('no responders'));
    const pub = await start({ retryMs: 5 });
    pub.record(entry(1));
    await pub.flush(2000);
    expect(ensure).toHaveBeenCalledTimes(3);
    expect(ids(await drain(bus, 1))).toEqual([entry(1).id]);
  });

  it('refuses at record() an entry the bus could never take, instead of blocking the queue', async () => {
    const pub = await start({ maxEventBytes: 1024 });
    expect(refusal(() => pub.record(entry(1, { id: '' })))).toBe('INPUT_INVALID');
    expect(refusal(() => pub.record(entry(1, { resourceRaw: 'x'.repeat(2000) })))).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    expect(pub.pending).toBe(0);
    pub.record(entry(2));
    await pub.flush(2000);
    expect(ids(await drain(bus, 1))).toEqual([entry(2).id]);
  });

  it('sends an entry with a lone surrogate escaped and marked, and every other entry as it is', async () => {
    const pub = await start();
    const lone = entry(1, { resourceRaw: 'x\ud800', principalId: 'agent-\udc00' });
    const plain = entry(2, { resourceRaw: 'nul\u0000 and 😀 travel as they are' });
    pub.record(lone);
    pub.record(plain);
    await pub.flush(2000);
    const [a, b] = arrived(await drain(bus, 2));
    expect(a!.escaped).toBe(true);
    const wire = auditEntryFromProto(a!.event.entry!);
    expect(wire.resourceRaw).toBe('x\\ud800');
    expect(mapAuditEntryText(wire, unescapeAuditText)).toEqual(lone);
    expect(b!.escaped).toBe(false);
    expect(auditEntryFromProto(b!.event.entry!)).toEqual(plain);
    // The mark travels as the header of a single message, or in the frame of a batch.
    if (batching) expect(a!.msg.headers[AUDIT_TEXT_HEADER]).toBeUndefined();
    else expect(a!.msg.headers[AUDIT_TEXT_HEADER]).toBe(AUDIT_TEXT_ESCAPED);
  });

  it('refuses after close and does not hang on an unreachable bus', async () => {
    const pub = await start({ retryMs: 5 });
    bus.mode = 'down';
    pub.record(entry(1));
    await pub.close(30);
    expect(pub.available()).toBe(false);
    expect(pub.pending).toBe(1);
    expect(refusal(() => pub.record(entry(2)))).toBe('AUDIT_UNAVAILABLE');
  });
});

/** A bus whose durable publishes wait until the test releases them (stored at call time, like NATS). */
class HeldBus extends InProcessBus {
  readonly held: {
    subject: string;
    msgId: string;
    data: Uint8Array;
    settle: (fail: boolean) => void;
  }[] = [];
  /** Every publish attempt, in order (retries included). */
  readonly sent: { subject: string; msgId: string; data: Uint8Array }[] = [];
  maxSeenInFlight = 0;
  private inFlight = 0;
  failIds = new Set<string>();
  /** The next this many publishes fail (not stored), whatever their msgId. */
  failNext = 0;
  override publishDurable(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: BusHeaders },
  ): Promise<PublishAck> {
    this.inFlight++;
    this.maxSeenInFlight = Math.max(this.maxSeenInFlight, this.inFlight);
    this.sent.push({ subject, msgId: options.msgId, data });
    // A failing publish is not stored (refused before the stream took it).
    const failing = this.failNext > 0 ? this.failNext-- > 0 : this.failIds.has(options.msgId);
    const stored = failing ? undefined : super.publishDurable(subject, data, options);
    return new Promise<PublishAck>((resolve, reject) => {
      this.held.push({
        subject,
        msgId: options.msgId,
        data,
        settle: (fail) => {
          this.inFlight--;
          if (fail || stored === undefined) reject(new Error('publish refused'));
          else void stored.then(resolve, reject);
        },
      });
    });
  }
  /** Settles every held publish, newest first (acks out of order). */
  releaseAll(): void {
    const all = this.held.splice(0).reverse();
    for (const h of all) h.settle(false);
  }
}

describe('audit publisher window (one message per entry)', () => {
  let bus: HeldBus;
  let pub: AuditPublisher;
  beforeEach(() => {
    bus = new HeldBus();
  });
  afterEach(async () => {
    await pub.close(100);
    await bus.close();
  });
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('keeps at most maxInFlight publishes awaiting their ack, and sends the rest as acks come', async () => {
    pub = await createAuditPublisher(bus, { source: 'edge', batching: false, maxInFlight: 4 });
    for (let i = 0; i < 10; i++) pub.record(entry(i));
    await tick();
    expect(bus.held).toHaveLength(4);
    expect(pub.pending).toBe(10);
    while (bus.held.length > 0) {
      bus.releaseAll();
      await tick();
    }
    await pub.flush(1000);
    expect(bus.maxSeenInFlight).toBe(4);
    expect(pub.pending).toBe(0);
    expect(ids(await drain(bus, 10))).toEqual(Array.from({ length: 10 }, (_, i) => entry(i).id));
  });

  it('the allowed neighbour: a window of one sends one publish at a time', async () => {
    pub = await createAuditPublisher(bus, { source: 'edge', batching: false, maxInFlight: 1 });
    for (let i = 0; i < 3; i++) pub.record(entry(i));
    await tick();
    expect(bus.held).toHaveLength(1);
    while (bus.held.length > 0) {
      bus.releaseAll();
      await tick();
    }
    await pub.flush(1000);
    expect(bus.maxSeenInFlight).toBe(1);
  });

  it('flush waits for every earlier entry even when later acks arrive first', async () => {
    pub = await createAuditPublisher(bus, { source: 'edge', batching: false });
    for (let i = 0; i < 3; i++) pub.record(entry(i));
    await tick();
    let flushed = false;
    const f = pub.flush(1000).then(() => (flushed = true));
    // Ack the last two only: the first is still unacknowledged, so flush must wait.
    const [first, ...rest] = bus.held.splice(0);
    for (const h of rest) h.settle(false);
    await tick();
    expect(flushed).toBe(false);
    expect(pub.pending).toBe(1);
    first!.settle(false);
    await f;
    expect(pub.pending).toBe(0);
    expect(ids(await drain(bus, 3))).toEqual([0, 1, 2].map((i) => entry(i).id));
  });

  it('retries a failed publish in the middle of the window without losing or resending the others', async () => {
    pub = await createAuditPublisher(bus, { source: 'edge', batching: false, retryMs: 5 });
    bus.failIds.add(entry(2).id);
    for (let i = 0; i < 5; i++) pub.record(entry(i));
    await tick();
    expect(bus.held.map((h) => h.msgId)).toEqual([0, 1, 2, 3, 4].map((i) => entry(i).id));
    bus.releaseAll();
    bus.failIds.clear();
    // Only the failed one is sent again, after the backoff.
    for (let i = 0; i < 50 && bus.held.length === 0; i++) await tick();
    expect(bus.held.map((h) => h.msgId)).toEqual([entry(2).id]);
    bus.releaseAll();
    await pub.flush(1000);
    const stored = ids(await drain(bus, 5));
    expect([...stored].sort()).toEqual([0, 1, 2, 3, 4].map((i) => entry(i).id));
    expect(new Set(stored).size).toBe(5);
    // Acceptance order, except that the failed entry follows those stored while it was failing.
    expect(stored).toEqual([0, 1, 3, 4, 2].map((i) => entry(i).id));
  });
});

describe('audit publisher batches (ADR 0005 §1)', () => {
  let bus: HeldBus;
  let pub: AuditPublisher;
  const start = (options: Omit<AuditPublisherOptions, 'source'> = {}) =>
    createAuditPublisher(bus, { source: 'edge', batching: true, ...options });
  beforeEach(() => {
    bus = new HeldBus();
  });
  afterEach(async () => {
    jest.useRealTimers();
    await pub.close(100);
    bus.releaseAll(); // settles what close left in flight (and its publish timers)
    await bus.close();
  });
  const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
  const idsOf = (...ns: number[]) => ns.map((n) => entry(n).id);
  const batchIds = (data: Uint8Array) =>
    decodeAuditBatch(data).frames.map(
      (f) => auditEntryFromProto(audit.AuditEvent.decode(f.event).entry!).id,
    );
  const heldIds = () => bus.held.map((h) => batchIds(h.data));
  /** Acks whatever is held, again and again, and returns the batches seen, until n entries went. */
  const collect = async (n: number): Promise<string[][]> => {
    const batches: string[][] = [];
    for (let i = 0; i < 200 && batches.flat().length < n; i++) {
      await tick(1);
      batches.push(...heldIds());
      bus.releaseAll();
    }
    return batches;
  };

  it('sends the entries accepted while a batch is in flight together, once its ack frees the slot', async () => {
    pub = await start({ maxInFlight: 1, lingerMs: 0 });
    pub.record(entry(0));
    expect(heldIds()).toEqual([idsOf(0)]);
    for (let i = 1; i <= 5; i++) pub.record(entry(i));
    await tick();
    expect(heldIds()).toEqual([idsOf(0)]);
    bus.releaseAll();
    await tick();
    expect(heldIds()).toEqual([idsOf(1, 2, 3, 4, 5)]);
    expect(bus.held[0]!.subject).toBe(AUDIT_BATCH_SUBJECT);
    bus.releaseAll();
    await pub.flush(1000);
    expect(pub.stats()).toEqual({
      batchesSent: 2,
      entriesSent: 6,
      maxBatch: 5,
      histogram: { '1': 1, '2-3': 0, '4-7': 1, '8-15': 0, '16-63': 0, '64+': 0 },
    });
    expect(ids(await drain(bus, 6))).toEqual(idsOf(0, 1, 2, 3, 4, 5));
  });

  it('the neighbour: with a slot free, an entry does not wait for the batch in flight', async () => {
    pub = await start({ maxInFlight: 2, lingerMs: 0 });
    pub.record(entry(0));
    pub.record(entry(1));
    expect(heldIds()).toEqual([idsOf(0), idsOf(1)]);
    pub.record(entry(2));
    pub.record(entry(3));
    expect(heldIds()).toEqual([idsOf(0), idsOf(1)]);
    bus.held.shift()!.settle(false); // one ack: one slot
    await tick();
    expect(heldIds()).toEqual([idsOf(1), idsOf(2, 3)]);
    bus.releaseAll();
    await pub.flush(1000);
  });

  it('recordDurable resolves when the batch holding its entry is acknowledged, not before', async () => {
    pub = await start({ maxInFlight: 1, lingerMs: 0 });
    pub.record(entry(0));
    let durable = false;
    const d = pub.recordDurable(entry(1)).then(() => (durable = true));
    await tick();
    expect(heldIds()).toEqual([idsOf(0)]);
    bus.releaseAll(); // entry 0's batch; entry 1's is sent now, not yet acknowledged
    await tick();
    expect(heldIds()).toEqual([idsOf(1)]);
    expect(durable).toBe(false);
    bus.releaseAll();
    await d;
    expect(durable).toBe(true);
  });

  it('recordDurable does not resolve on the ack of a later batch', async () => {
    pub = await start({ maxInFlight: 2, lingerMs: 0 });
    let durable = false;
    const d = pub.recordDurable(entry(0)).then(() => (durable = true));
    pub.record(entry(1));
    expect(heldIds()).toEqual([idsOf(0), idsOf(1)]);
    bus.held.pop()!.settle(false); // entry 1's batch
    await tick();
    expect(durable).toBe(false);
    bus.releaseAll();
    await d;
  });

  it('entries that waited for a full window go with the next ack, without lingering again', async () => {
    pub = await start({ maxInFlight: 1, lingerMs: 60_000 });
    const d = pub.recordDurable(entry(0));
    pub.record(entry(1));
    pub.record(entry(2));
    expect(heldIds()).toEqual([idsOf(0)]);
    bus.releaseAll();
    await d;
    expect(heldIds()).toEqual([idsOf(1, 2)]);
    // The neighbour: with the slot free again, a new entry nobody awaits lingers.
    bus.releaseAll();
    await tick();
    pub.record(entry(3));
    await tick();
    expect(bus.held).toHaveLength(0);
    expect(pub.pending).toBe(1);
  });

  it('recordDurable waits for its own batch only, while flush waits for everything', async () => {
    pub = await start({ maxInFlight: 2, lingerMs: 0 });
    pub.record(entry(0));
    let flushed = false;
    const d = pub.recordDurable(entry(1));
    const f = pub.flush(1000).then(() => (flushed = true));
    expect(heldIds()).toEqual([idsOf(0), idsOf(1)]);
    bus.held.pop()!.settle(false); // entry 1's batch only
    await d;
    await tick();
    expect(flushed).toBe(false);
    expect(pub.pending).toBe(1);
    bus.releaseAll();
    await f;
    expect(pub.pending).toBe(0);
  });

  it('recordDurable rejects with AUDIT_UNAVAILABLE on timeout; the entry stays and is delivered', async () => {
    pub = await start({ lingerMs: 0 });
    await expect(pub.recordDurable(entry(0), 20)).rejects.toMatchObject({
      reason: 'AUDIT_UNAVAILABLE',
    });
    expect(pub.pending).toBe(1);
    bus.releaseAll();
    await pub.flush(1000);
    expect(ids(await drain(bus, 1))).toEqual(idsOf(0));
  });

  it('an entry nobody awaits lingers up to lingerMs from its acceptance to join a batch', async () => {
    pub = await start({ lingerMs: 30 });
    jest.useFakeTimers({ now: Date.now() });
    pub.record(entry(0));
    jest.advanceTimersByTime(10);
    pub.record(entry(1));
    jest.advanceTimersByTime(19);
    expect(bus.held).toHaveLength(0);
    jest.advanceTimersByTime(1); // 30 ms after entry 0: both go, entry 1 after 20 ms
    expect(heldIds()).toEqual([idsOf(0, 1)]);
    jest.useRealTimers();
    bus.releaseAll();
    await pub.flush(1000);
  });

  it('the neighbours: lingerMs 0 sends at once; an awaited entry or a flush takes the lingering ones', async () => {
    pub = await start({ lingerMs: 0 });
    pub.record(entry(0));
    expect(heldIds()).toEqual([idsOf(0)]);
    bus.releaseAll();
    await pub.flush(1000);
    await pub.close(100);

    pub = await start({ lingerMs: 60_000 });
    pub.record(entry(1));
    pub.record(entry(2));
    expect(bus.held).toHaveLength(0);
    const d = pub.recordDurable(entry(3));
    expect(heldIds()).toEqual([idsOf(1, 2, 3)]);
    pub.record(entry(4));
    const f = pub.flush(1000);
    expect(heldIds()).toEqual([idsOf(1, 2, 3), idsOf(4)]);
    bus.releaseAll();
    await Promise.all([d, f]);
  });

  it('resends a failed batch with the same bytes and msgId, and it is stored once', async () => {
    pub = await start({ lingerMs: 60_000, retryMs: 5 });
    bus.failNext = 1;
    pub.record(entry(0));
    pub.record(entry(1));
    const d = pub.recordDurable(entry(2));
    const first = bus.held[0]!;
    expect(batchIds(first.data)).toEqual(idsOf(0, 1, 2));
    bus.releaseAll(); // refused
    for (let i = 0; i < 100 && bus.held.length === 0; i++) await tick(1);
    const again = bus.held[0]!;
    expect(again.msgId).toBe(first.msgId);
    expect(Buffer.from(again.data).equals(Buffer.from(first.data))).toBe(true);
    bus.releaseAll();
    await d;
    expect(bus.sent).toHaveLength(2);
    expect(pub.stats().batchesSent).toBe(1);
    const msgs = await drain(bus, 3);
    expect(msgs).toHaveLength(1);
    expect(ids(msgs)).toEqual(idsOf(0, 1, 2));
  });

  it('splits batches at maxBatchEntries', async () => {
    pub = await start({ maxInFlight: 1, maxBatchEntries: 3, lingerMs: 0 });
    for (let i = 0; i < 8; i++) pub.record(entry(i));
    expect(await collect(8)).toEqual([idsOf(0), idsOf(1, 2, 3), idsOf(4, 5, 6), idsOf(7)]);
  });

  it('splits batches at maxBatchBytes', async () => {
    const big = (n: number) => entry(n, { resourceRaw: 'r'.repeat(600) });
    const eventBytes = auditEventMessage(big(0), 'edge', Date.now()).data.length;
    const maxBatchBytes = 2 * eventBytes + 100;
    pub = await start({ maxInFlight: 1, lingerMs: 0, maxEventBytes: 1000, maxBatchBytes });
    for (let i = 0; i < 6; i++) pub.record(big(i));
    const sizes: number[] = [];
    const batches: string[][] = [];
    for (let i = 0; i < 200 && batches.flat().length < 6; i++) {
      await tick(1);
      for (const h of bus.held) {
        sizes.push(h.data.length);
        batches.push(batchIds(h.data));
      }
      bus.releaseAll();
    }
    expect(batches).toEqual([idsOf(0), idsOf(1, 2), idsOf(3, 4), idsOf(5)]);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(maxBatchBytes);
  });

  it('raises maxBatchBytes to fit one entry of maxEventBytes, so no entry is stuck', async () => {
    const big = (n: number) => entry(n, { resourceRaw: 'r'.repeat(600) });
    pub = await start({ maxInFlight: 1, lingerMs: 0, maxEventBytes: 1000, maxBatchBytes: 10 });
    for (let i = 0; i < 3; i++) pub.record(big(i));
    expect(await collect(3)).toEqual([idsOf(0), idsOf(1), idsOf(2)]);
  });

  it('refuses at its buffer bound (counted in entries), synchronously for recordDurable too', async () => {
    pub = await start({ maxBuffered: 3, lingerMs: 0 });
    for (let i = 0; i < 3; i++) pub.record(entry(i));
    expect(pub.available()).toBe(false);
    expect(refusal(() => pub.record(entry(3)))).toBe('AUDIT_UNAVAILABLE');
    expect(refusal(() => void pub.recordDurable(entry(3)))).toBe('AUDIT_UNAVAILABLE');
    expect(pub.pending).toBe(3);
    for (let i = 0; i < 100 && pub.pending > 0; i++) {
      bus.releaseAll();
      await tick(1);
    }
    expect(pub.available()).toBe(true);
    pub.record(entry(4));
    bus.releaseAll();
    await tick();
    bus.releaseAll();
    await pub.flush(1000);
    expect(ids(await drain(bus, 4))).toEqual(idsOf(0, 1, 2, 4));
  });

  it('keeps acceptance order across batches, with acks arriving out of order', async () => {
    pub = await start({ lingerMs: 1 });
    const durables: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      if (i % 7 === 0) durables.push(pub.recordDurable(entry(i)));
      else pub.record(entry(i));
      if (i % 13 === 0) {
        bus.releaseAll(); // newest first
        await tick(1);
      }
    }
    for (let i = 0; i < 500 && pub.pending > 0; i++) {
      bus.releaseAll();
      await tick(1);
    }
    await Promise.all(durables);
    expect(ids(await drain(bus, 200))).toEqual(Array.from({ length: 200 }, (_, i) => entry(i).id));
    expect(pub.stats().entriesSent).toBe(200);
    expect(pub.stats().batchesSent).toBeLessThan(200);
  });

  it('refuses at record() exactly the entries whose encoded event exceeds maxEventBytes', async () => {
    // Encoding waits for the batch, so record() decides on a size bound: it must never let an
    // oversized event through, nor refuse one that fits.
    pub = await start({ maxEventBytes: 600, maxBuffered: 100_000, lingerMs: 60_000 });
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now);
    let refused = 0;
    let accepted = 0;
    for (const unit of ['a', '\u00e9', '\u20ac', '\ud83d\ude00', '\ud800', '\u0000', 'x\udc00'])
      for (let k = 0; k < 700; k += 7) {
        const e = entry(k, {
          id: `aud_${unit.codePointAt(0)}_${k}`,
          resourceRaw: unit.repeat(k),
          handleIds: [unit],
        });
        const exact = auditEventMessage(e, 'edge', now).data.length;
        const got = refusal(() => pub.record(e));
        expect([e.id, got]).toEqual([e.id, exact > 600 ? 'PAYLOAD_TOO_LARGE' : undefined]);
        if (got === undefined) accepted++;
        else refused++;
      }
    expect(accepted).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
    jest.restoreAllMocks();
  });

  it('auditBatchMessage builds what the publisher sends: one frame per entry, escape marked', () => {
    const lone = entry(1, { resourceRaw: 'x\ud800' });
    const m = auditBatchMessage([entry(0), lone], 'edge', Date.now(), 'b-1');
    expect(m).toMatchObject({ subject: AUDIT_BATCH_SUBJECT, msgId: 'b-1' });
    const batch = decodeAuditBatch(m.data);
    expect(batch.batchId).toBe('b-1');
    expect(batch.frames.map((f) => f.textEscaped)).toEqual([false, true]);
    expect(auditEntryFromProto(audit.AuditEvent.decode(batch.frames[0]!.event).entry!)).toEqual(
      entry(0),
    );
  });
});
