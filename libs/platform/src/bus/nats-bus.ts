import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  connect,
  headers as natsHeaders,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import { createLogger } from '../logging/logger';
import { extractBusHeaders, injectBusHeaders, withContext } from '../telemetry/telemetry';
import type {
  BatchConsumerConfig,
  BusHeaders,
  BusMessage,
  BusStatus,
  ConsumerConfig,
  DurableMessage,
  EventBus,
  PublishAck,
  StreamConfig,
  Subscription,
} from './event-bus';

/** How to reach NATS; reconnects forever by default, because a service must outlive a NATS restart. */
export interface NatsBusOptions {
  /** e.g. `nats://127.0.0.1:4222`; several separated by commas. */
  readonly servers: string;
  /** Connection name shown by the server (service name). */
  readonly name: string;
  /** Default true. */
  readonly reconnect?: boolean;
  /** -1 (default) = forever. */
  readonly maxReconnectAttempts?: number;
  /** Wait between reconnect attempts; default 500 ms (invalidation gaps stay short). */
  readonly reconnectTimeWaitMs?: number;
  /** Initial connect timeout; default 5000 ms. */
  readonly connectTimeoutMs?: number;
}

const log = createLogger('NatsBus');
const NANOS_PER_MS = 1_000_000;
/** How long one pull waits for a message; the bound on how long `unsubscribe` of a durable takes. */
const PULL_EXPIRES_MS = 1000;

function toNatsHeaders(h: BusHeaders): MsgHdrs | undefined {
  const entries = Object.entries(injectBusHeaders(h));
  if (entries.length === 0) return undefined;
  const out = natsHeaders();
  for (const [k, v] of entries) out.set(k, v);
  return out;
}

// NATS' own headers (Nats-Msg-Id, Nats-Expected-*) are transport details, not part of the message.
function fromNatsHeaders(h: MsgHdrs | undefined): BusHeaders {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  for (const k of h.keys()) if (!/^nats-/i.test(k)) out[k] = h.get(k);
  return out;
}

function isNotFound(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/**
 * The distributed mode's bus: core NATS for at-most-once notifications and
 * JetStream for durable streams. Context propagation rides in the headers.
 */
export class NatsBus implements EventBus {
  readonly kind = 'nats' as const;
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private readonly js: JetStreamClient;
  private connected = true;
  private closed = false;
  private readonly consuming = new Set<string>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
  ) {
    this.js = jetstream(nc);
    void this.watchStatus();
    void nc.closed().then((err) => {
      if (err) log.error({ err }, 'NATS connection closed with an error');
      this.markClosed();
    });
  }

  /** Connects (failing fast if the server is unreachable at start) and checks JetStream is on. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const nc = await connect({
      servers: options.servers.split(',').map((s) => s.trim()),
      name: options.name,
      reconnect: options.reconnect ?? true,
      maxReconnectAttempts: options.maxReconnectAttempts ?? -1,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? 500,
      timeout: options.connectTimeoutMs ?? 5000,
      // Without this the client builds an Error (a stack trace) per request to decorate a
      // possible failure: two per durable publish, a measurable share of a Decide's CPU.
      noAsyncTraces: true,
    });
    try {
      const jsm = await jetstreamManager(nc);
      log.info({ server: nc.getServer(), name: options.name }, 'connected to NATS');
      return new NatsBus(nc, jsm);
    } catch (err: unknown) {
      await nc.close();
      throw err;
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          if (!this.connected) break;
          this.connected = false;
          log.warn({ server: s.server }, 'NATS disconnected');
          this.emit('disconnected');
          break;
        case 'reconnect':
          this.connected = true;
          log.info({ server: s.server }, 'NATS reconnected');
          this.emit('reconnected');
          break;
        case 'error':
          log.error({ err: s.error }, 'NATS error');
          break;
        case 'slowConsumer':
          log.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'NATS slow consumer');
          break;
        case 'staleConnection':
        case 'forceReconnect':
        case 'reconnecting':
        case 'ldm':
        case 'ping':
        case 'update':
        case 'close':
          break; // informational; disconnect/reconnect/close cover the state changes
      }
    }
  }

  private emit(status: BusStatus): void {
    for (const l of [...this.listeners]) {
      try {
        l(status);
      } catch (err: unknown) {
        log.error({ err, status }, 'status listener failed');
      }
    }
  }

  publish(subject: string, data: Uint8Array, headers: BusHeaders = {}): Promise<void> {
    try {
      const h = toNatsHeaders(headers);
      // While disconnected, nats.js buffers this and sends it on reconnect.
      this.nc.publish(subject, data, h === undefined ? {} : { headers: h });
      return Promise.resolve();
    } catch (err: unknown) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async subscribe(
    subject: string,
    handler: (msg: BusMessage) => void | Promise<void>,
  ): Promise<Subscription> {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) {
          log.error({ err, subject }, 'subscription failed');
          return;
        }
        const message: BusMessage = {
          subject: msg.subject,
          data: msg.data,
          headers: fromNatsHeaders(msg.headers),
        };
        withContext(extractBusHeaders(message.headers), () => {
          Promise.resolve()
            .then(() => handler(message))
            .catch((e: unknown) =>
              log.error({ err: e, subject: msg.subject }, 'subscriber failed'),
            );
        });
      },
    });
    // The server has the interest once a round trip after SUB completes.
    await this.nc.flush();
    return {
      unsubscribe: async () => {
        if (sub.isClosed()) return;
        sub.unsubscribe();
        if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
      },
    };
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  isConnected(): boolean {
    return this.connected && !this.closed;
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    const settings = {
      subjects: [...config.subjects],
      max_age: (config.maxAgeMs ?? 7 * 24 * 3_600_000) * NANOS_PER_MS,
      duplicate_window: (config.duplicateWindowMs ?? 120_000) * NANOS_PER_MS,
    };
    try {
      await this.jsm.streams.info(config.name);
    } catch (err: unknown) {
      if (!isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw err;
      try {
        await this.jsm.streams.add({ name: config.name, ...settings });
        log.info({ stream: config.name }, 'stream created');
        return;
      } catch (addErr: unknown) {
        // Another process created it in between: fall through to update.
        log.debug({ err: addErr, stream: config.name }, 'stream add raced; updating');
      }
    }
    await this.jsm.streams.update(config.name, settings);
  }

  async publishDurable(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: BusHeaders },
  ): Promise<PublishAck> {
    const h = toNatsHeaders(options.headers ?? {});
    const ack = await this.js.publish(subject, data, {
      msgID: options.msgId,
      ...(h === undefined ? {} : { headers: h }),
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  consumeDurable(
    config: ConsumerConfig,
    handler: (msg: DurableMessage) => Promise<void>,
  ): Promise<Subscription> {
    return this.consumeDurableBatch({ ...config, maxBatch: 1 }, (msgs) => handler(msgs[0]!));
  }

  async consumeDurableBatch(
    config: BatchConsumerConfig,
    handler: (msgs: readonly DurableMessage[]) => Promise<void>,
  ): Promise<Subscription> {
    const key = `${config.stream}/${config.durable}`;
    if (this.consuming.has(key))
      throw new Error(`durable ${config.durable} is already being consumed`);
    const maxBatch = Math.floor(config.maxBatch);
    if (!(maxBatch >= 1)) throw new Error('maxBatch must be at least 1');
    const ackWaitMs = config.ackWaitMs ?? 30_000;
    const update = {
      ack_wait: ackWaitMs * NANOS_PER_MS,
      // At most one batch unacknowledged at a time: in stream order (with maxBatch 1, also
      // across processes sharing the durable).
      max_ack_pending: maxBatch,
      ...(config.filterSubject === undefined ? {} : { filter_subject: config.filterSubject }),
    };
    try {
      await this.jsm.consumers.info(config.stream, config.durable);
      await this.jsm.consumers.update(config.stream, config.durable, update);
    } catch (err: unknown) {
      if (!isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
      await this.jsm.consumers.add(config.stream, {
        durable_name: config.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...update,
      });
    }
    const consumer = await this.js.consumers.get(config.stream, config.durable);
    this.consuming.add(key);
    const retryMs = Math.min(ackWaitMs, 1000);
    let running = true;

    /** Runs the handler on a batch; true when it was acknowledged, false when handed back. */
    const handle = async (batch: JsMsg[]): Promise<boolean> => {
      const messages: DurableMessage[] = batch.map((m) => ({
        subject: m.subject,
        data: m.data,
        headers: fromNatsHeaders(m.headers),
        seq: m.seq,
        redelivered: m.redelivered,
      }));
      try {
        await withContext(extractBusHeaders(messages[0]!.headers), () => handler(messages));
        // AckExplicit, one ack per message, none awaited: they leave in one socket write and
        // cost no round trip. AckAll (one ack for the batch) cannot replace it: nats-server
        // refuses to change a durable's ack policy in place (API error 10012), and with two
        // processes on one durable the last message's ack would also acknowledge the other
        // process's batch before it is committed (ADR 0005 §1).
        for (const m of batch) m.ack();
        return true;
      } catch (err: unknown) {
        log.warn(
          { err, seq: batch[0]!.seq, count: batch.length, durable: config.durable },
          'handler failed; messages will be redelivered',
        );
        for (const m of batch) m.nak(retryMs);
        return false;
      }
    };

    /**
     * Up to `count` messages the consumer's last delivery said are waiting. They are available, so
     * the fetch returns as soon as it has them; if another process took some, it ends at its
     * expiry with what it got.
     */
    const fetchWaiting = async (count: number): Promise<JsMsg[]> => {
      const got: JsMsg[] = [];
      try {
        const iter = await consumer.fetch({ max_messages: count, expires: PULL_EXPIRES_MS });
        for await (const m of iter) got.push(m);
      } catch (err: unknown) {
        // What arrived is handled now; the rest is fetched by the next pull.
        log.debug({ err, durable: config.durable }, 'batch fetch ended early');
      }
      return got;
    };

    // Short pulls rather than consume(): a stopped consumer leaves no open pull behind into which
    // the server could deliver a message nobody reads (which would then wait out ack_wait before
    // redelivery). While messages wait, each batch is ONE pull sized by the pending count the
    // previous delivery reported (ADR 0005 §1); from idle, one pull waits for the first message
    // and, if more arrived with it, a second takes them.
    const loop = (async () => {
      let waiting = 0;
      while (running && !this.closed) {
        let batch: JsMsg[];
        try {
          if (waiting > 0) {
            batch = await fetchWaiting(Math.min(waiting, maxBatch));
          } else {
            const m = await consumer.next({ expires: PULL_EXPIRES_MS });
            if (m === null) continue;
            const more = Math.min(m.info.pending, maxBatch - 1);
            batch = [m, ...(more > 0 ? await fetchWaiting(more) : [])];
          }
        } catch (err: unknown) {
          waiting = 0;
          if (!running || this.closed) break;
          log.debug({ err, durable: config.durable }, 'pull failed; retrying');
          await new Promise((r) => setTimeout(r, 250));
          continue;
        }
        if (batch.length === 0) {
          waiting = 0;
          continue;
        }
        if (!running) {
          for (const m of batch) m.nak(); // arrived after unsubscribe: hand them straight back
          break;
        }
        // After a failure, wait for the handed-back batch: a pull sized for later messages
        // would take them first.
        waiting = (await handle(batch)) ? batch[batch.length - 1]!.info.pending : 0;
      }
    })();

    return {
      unsubscribe: async () => {
        running = false;
        await loop;
        this.consuming.delete(key);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed || this.nc.isClosed()) return;
    this.closed = true;
    await this.nc.drain();
    this.markClosed();
  }

  private closedEmitted = false;
  private markClosed(): void {
    this.connected = false;
    this.closed = true;
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    this.emit('closed');
  }
}
