import { createLogger } from '../logging/logger';
import { extractBusHeaders, injectBusHeaders, withContext } from '../telemetry/telemetry';
import {
  subjectMatches,
  type BusHeaders,
  type BusMessage,
  type BatchConsumerConfig,
  type BusStatus,
  type ConsumerConfig,
  type DurableMessage,
  type EventBus,
  type PublishAck,
  type StreamConfig,
  type Subscription,
} from './event-bus';

interface StoredMessage extends BusMessage {
  readonly seq: number;
  readonly msgId: string;
  readonly at: number;
}

interface Stream {
  config: StreamConfig;
  messages: StoredMessage[];
  seq: number;
  consumers: Map<string, ConsumerState>;
}

interface ConsumerState {
  /** Highest acknowledged sequence (messages are processed strictly in order). */
  ackedSeq: number;
  /** The subscription currently consuming; a loop whose token is no longer here stops. */
  owner: symbol | undefined;
  wake?: () => void;
}

const log = createLogger('InProcessBus');

const closedError = (): Promise<never> => Promise.reject(new Error('bus is closed'));

/**
 * The embedded mode's bus: same contract as NATS, in one process. Durable
 * streams keep messages in memory (they do not survive the process, which is
 * the embedded mode's documented limit); consumers remember their position
 * across unsubscribe/resubscribe like a JetStream durable.
 */
export class InProcessBus implements EventBus {
  readonly kind = 'in-process' as const;
  private readonly subs = new Set<{
    subject: string;
    handler: (m: BusMessage) => void | Promise<void>;
  }>();
  private readonly streams = new Map<string, Stream>();
  private readonly statusListeners = new Set<(s: BusStatus) => void>();
  private closed = false;

  publish(subject: string, data: Uint8Array, headers: BusHeaders = {}): Promise<void> {
    if (this.closed) return closedError();
    // Same trace propagation as over NATS: the context travels in the headers.
    const msg: BusMessage = { subject, data, headers: injectBusHeaders(headers) };
    const ctx = extractBusHeaders(msg.headers);
    for (const sub of [...this.subs]) {
      if (!subjectMatches(sub.subject, subject)) continue;
      // Delivered asynchronously, like a network bus; a failing handler never hurts the publisher.
      queueMicrotask(() => {
        void withContext(ctx, () =>
          Promise.resolve()
            .then(() => sub.handler(msg))
            .catch((err: unknown) => log.error({ err, subject }, 'subscriber failed')),
        );
      });
    }
    return Promise.resolve();
  }

  subscribe(
    subject: string,
    handler: (msg: BusMessage) => void | Promise<void>,
  ): Promise<Subscription> {
    if (this.closed) return closedError();
    const entry = { subject, handler };
    this.subs.add(entry);
    return Promise.resolve({
      unsubscribe: () => {
        this.subs.delete(entry);
        return Promise.resolve();
      },
    });
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  isConnected(): boolean {
    return !this.closed;
  }

  ensureStream(config: StreamConfig): Promise<void> {
    if (this.closed) return closedError();
    const existing = this.streams.get(config.name);
    if (existing) existing.config = config;
    else this.streams.set(config.name, { config, messages: [], seq: 0, consumers: new Map() });
    return Promise.resolve();
  }

  publishDurable(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: BusHeaders },
  ): Promise<PublishAck> {
    if (this.closed) return closedError();
    const stream = [...this.streams.values()].find((s) =>
      s.config.subjects.some((p) => subjectMatches(p, subject)),
    );
    if (stream === undefined)
      return Promise.reject(new Error(`no stream holds subject ${subject}`));
    const now = Date.now();
    const window = stream.config.duplicateWindowMs ?? 120_000;
    const dup = stream.messages.find((m) => m.msgId === options.msgId && now - m.at < window);
    if (dup) return Promise.resolve({ seq: dup.seq, duplicate: true });
    const seq = ++stream.seq;
    stream.messages.push({
      subject,
      data,
      headers: injectBusHeaders(options.headers ?? {}),
      seq,
      msgId: options.msgId,
      at: now,
    });
    this.trim(stream, now);
    for (const c of stream.consumers.values()) c.wake?.();
    return Promise.resolve({ seq, duplicate: false });
  }

  consumeDurable(
    config: ConsumerConfig,
    handler: (msg: DurableMessage) => Promise<void>,
  ): Promise<Subscription> {
    return this.consumeDurableBatch({ ...config, maxBatch: 1 }, (msgs) => handler(msgs[0]!));
  }

  consumeDurableBatch(
    config: BatchConsumerConfig,
    handler: (msgs: readonly DurableMessage[]) => Promise<void>,
  ): Promise<Subscription> {
    if (this.closed) return closedError();
    const stream = this.streams.get(config.stream);
    if (stream === undefined)
      return Promise.reject(new Error(`stream ${config.stream} does not exist`));
    if (!(config.maxBatch >= 1)) return Promise.reject(new Error('maxBatch must be at least 1'));
    let state = stream.consumers.get(config.durable);
    if (state === undefined) {
      state = { ackedSeq: 0, owner: undefined };
      stream.consumers.set(config.durable, state);
    }
    if (state.owner !== undefined)
      return Promise.reject(new Error(`durable ${config.durable} is already being consumed`));
    // A fresh token per subscription: after unsubscribe + resubscribe, a previous loop still
    // inside its handler sees it is no longer the owner and stops, so one loop runs at a time.
    const token = Symbol(config.durable);
    state.owner = token;
    const consumer = state;
    const retryMs = Math.min(config.ackWaitMs ?? 30_000, 1000);
    const matches = (m: StoredMessage) =>
      m.seq > consumer.ackedSeq &&
      (config.filterSubject === undefined || subjectMatches(config.filterSubject, m.subject));
    const loop = async () => {
      let attempts = 0;
      while (consumer.owner === token && !this.closed) {
        const batch: StoredMessage[] = [];
        for (const m of stream.messages) {
          if (batch.length >= config.maxBatch) break;
          if (matches(m)) batch.push(m);
        }
        if (batch.length === 0) {
          // Skip past non-matching messages so the position keeps moving.
          consumer.ackedSeq = Math.max(consumer.ackedSeq, stream.seq);
          await new Promise<void>((resolve) => (consumer.wake = resolve));
          consumer.wake = undefined;
          continue;
        }
        const msgs: DurableMessage[] = batch.map((m) => ({
          subject: m.subject,
          data: m.data,
          headers: m.headers,
          seq: m.seq,
          redelivered: attempts > 0,
        }));
        try {
          await withContext(extractBusHeaders(msgs[0]!.headers), () => handler(msgs));
          consumer.ackedSeq = batch[batch.length - 1]!.seq;
          attempts = 0;
        } catch (err: unknown) {
          attempts++;
          log.warn(
            { err, seq: batch[0]!.seq, count: batch.length, durable: config.durable },
            'handler failed; messages will be redelivered',
          );
          await new Promise((r) => setTimeout(r, retryMs));
        }
      }
    };
    void loop();
    return Promise.resolve({
      unsubscribe: () => {
        if (consumer.owner === token) consumer.owner = undefined;
        consumer.wake?.();
        return Promise.resolve();
      },
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.subs.clear();
    for (const s of this.streams.values())
      for (const c of s.consumers.values()) {
        c.owner = undefined;
        c.wake?.();
      }
    for (const l of this.statusListeners) l('closed');
    return Promise.resolve();
  }

  private trim(stream: Stream, now: number): void {
    const maxAge = stream.config.maxAgeMs ?? 7 * 24 * 3_600_000;
    while (stream.messages.length > 0 && now - stream.messages[0]!.at > maxAge)
      stream.messages.shift();
  }
}
