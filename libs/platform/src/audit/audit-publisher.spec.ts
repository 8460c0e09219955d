import { HcpError, type AuditEntry } from '@hcp/core';
import { audit, auditEntryFromProto } from '@hcp/proto';
import type { BusHeaders, DurableMessage, PublishAck } from '../bus/event-bus';
import { InProcessBus } from '../bus/in-process-bus';
import { mapAuditEntryText, unescapeAuditText } from './audit-text';
import {
  AUDIT_STREAM,
  AUDIT_TEXT_ESCAPED,
  AUDIT_TEXT_HEADER,
  auditSubject,
  createAuditPublisher,
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

/** Everything the stream holds, decoded, via a durable consumer. */
async function drain(bus: InProcessBus, expected: number): Promise<DurableMessage[]> {
  const got: DurableMessage[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await bus.consumeDurable({ stream: AUDIT_STREAM, durable: 'test' }, (m) => {
    got.push(m);
    if (got.length === expected) done();
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

const ids = (msgs: DurableMessage[]) =>
  msgs.map((m) => auditEntryFromProto(audit.AuditEvent.decode(m.data).entry!).id);

describe('audit publisher', () => {
  let bus: FlakyBus;
  let started: AuditPublisher[];
  const start = async (options: Omit<AuditPublisherOptions, 'source'> = {}) => {
    const p = await createAuditPublisher(bus, { source: 'edge', ...options });
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
    const first = audit.AuditEvent.decode(msgs[0]!.data);
    expect(first.source).toBe('edge');
    expect(first.publishedAt?.seconds).toBeGreaterThan(0);
    expect(auditEntryFromProto(first.entry!)).toEqual(entries[0]);
    expect(msgs[0]!.subject).toBe('hcp.audit.handle_peek');
    expect(msgs[1]!.subject).toBe('hcp.audit.tools_call');
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

  it('stores an entry once when a publish is retried after its ack was lost (msgId = entry.id)', async () => {
    const pub = await start({ retryMs: 5 });
    bus.mode = 'lose-ack';
    pub.record(entry(1));
    pub.record(entry(2));
    await pub.flush(2000);
    expect(bus.attempts).toBe(3);
    expect(ids(await drain(bus, 2))).toEqual([entry(1).id, entry(2).id]);
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
    const [a, b] = await drain(bus, 2);
    expect(a!.headers[AUDIT_TEXT_HEADER]).toBe(AUDIT_TEXT_ESCAPED);
    const wire = auditEntryFromProto(audit.AuditEvent.decode(a!.data).entry!);
    expect(wire.resourceRaw).toBe('x\\ud800');
    expect(mapAuditEntryText(wire, unescapeAuditText)).toEqual(lone);
    expect(b!.headers[AUDIT_TEXT_HEADER]).toBeUndefined();
    expect(auditEntryFromProto(audit.AuditEvent.decode(b!.data).entry!)).toEqual(plain);
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
  readonly held: { msgId: string; settle: (fail: boolean) => void }[] = [];
  maxSeenInFlight = 0;
  private inFlight = 0;
  failIds = new Set<string>();
  override publishDurable(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: BusHeaders },
  ): Promise<PublishAck> {
    this.inFlight++;
    this.maxSeenInFlight = Math.max(this.maxSeenInFlight, this.inFlight);
    // A failing publish is not stored (refused before the stream took it).
    const stored = this.failIds.has(options.msgId)
      ? undefined
      : super.publishDurable(subject, data, options);
    return new Promise<PublishAck>((resolve, reject) => {
      this.held.push({
        msgId: options.msgId,
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

describe('audit publisher window', () => {
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
    pub = await createAuditPublisher(bus, { source: 'edge', maxInFlight: 4 });
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
    pub = await createAuditPublisher(bus, { source: 'edge', maxInFlight: 1 });
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
    pub = await createAuditPublisher(bus, { source: 'edge' });
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
    pub = await createAuditPublisher(bus, { source: 'edge', retryMs: 5 });
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
