/** Message headers (trace context, message ids); text only. */
export type BusHeaders = Readonly<Record<string, string>>;

/** A message as a subscriber receives it. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
}

/** A message from a durable stream; the handler acknowledges it once it is safely processed. */
export interface DurableMessage extends BusMessage {
  /** Position in the stream; increases monotonically. */
  readonly seq: number;
  /** True when this delivery is a retry of an earlier, unacknowledged one. */
  readonly redelivered: boolean;
}

/** Connection state changes; invalidation-driven caches must treat a gap as lost events. */
export type BusStatus = 'connected' | 'disconnected' | 'reconnected' | 'closed';

/** A live subscription or consumer. */
export interface Subscription {
  unsubscribe(): Promise<void>;
}

/** A durable stream (JetStream) and how long it keeps and de-duplicates messages. */
export interface StreamConfig {
  readonly name: string;
  readonly subjects: readonly string[];
  /** Retention; default 7 days. */
  readonly maxAgeMs?: number;
  /** Window in which a repeated msgId is dropped; default 2 minutes. */
  readonly duplicateWindowMs?: number;
}

/** A durable consumer: named, survives restarts, redelivers what was not acknowledged. */
export interface ConsumerConfig {
  readonly stream: string;
  readonly durable: string;
  readonly filterSubject?: string;
  /** How long a delivery may stay unacknowledged before it is redelivered; default 30 s. */
  readonly ackWaitMs?: number;
}

/** A durable consumer whose handler takes several messages at once (one commit per batch). */
export interface BatchConsumerConfig extends ConsumerConfig {
  /** Most messages handed over at once (and unacknowledged at once); at least 1. */
  readonly maxBatch: number;
}

/** Result of a durable publish. */
export interface PublishAck {
  readonly seq: number;
  /** True when the stream already held a message with this msgId (nothing new stored). */
  readonly duplicate: boolean;
}

/**
 * The event bus every service uses. Two implementations pass one conformance
 * suite: NATS (core subjects + JetStream) for the distributed mode, and an
 * in-process one for the embedded mode.
 */
export interface EventBus {
  readonly kind: 'nats' | 'in-process';
  /** At-most-once fan-out (core NATS): cheap notifications such as cache invalidation. */
  publish(subject: string, data: Uint8Array, headers?: BusHeaders): Promise<void>;
  /** Subscribes to a subject (NATS wildcards `*` and `>` allowed). Resolves once the server has the interest. */
  subscribe(
    subject: string,
    handler: (msg: BusMessage) => void | Promise<void>,
  ): Promise<Subscription>;
  /** Listens to connection state; returns a function that stops listening. */
  onStatus(listener: (status: BusStatus) => void): () => void;
  /** True while connected (the in-process bus: until closed). */
  isConnected(): boolean;
  /** Creates the stream if absent (idempotent), or updates its subjects. */
  ensureStream(config: StreamConfig): Promise<void>;
  /** At-least-once publish into a stream; a repeated msgId inside the window is stored once. */
  publishDurable(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: BusHeaders },
  ): Promise<PublishAck>;
  /**
   * Consumes a stream through a durable consumer, one message at a time in order. A handler that
   * resolves acknowledges the message; one that throws gets it redelivered later.
   */
  consumeDurable(
    config: ConsumerConfig,
    handler: (msg: DurableMessage) => Promise<void>,
  ): Promise<Subscription>;
  /**
   * Like consumeDurable, but hands over the messages available now, up to maxBatch, in stream
   * order (it never waits to fill a batch). A handler that resolves acknowledges them all; one
   * that throws gets them all redelivered later, before any later message. One batch at a time.
   */
  consumeDurableBatch(
    config: BatchConsumerConfig,
    handler: (msgs: readonly DurableMessage[]) => Promise<void>,
  ): Promise<Subscription>;
  /** Drains subscriptions and closes the connection. */
  close(): Promise<void>;
}

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}
