import { HcpError, type AuditEntry, type EndpointFamily } from '@hcp/core';
import { audit, auditEntryToProto, toTimestamp } from '@hcp/proto';
import type { EventBus, StreamConfig } from '../bus/event-bus';
import { createLogger } from '../logging/logger';

/** The JetStream stream every service publishes audit events into; audit-log consumes it. */
export const AUDIT_STREAM = 'HCP_AUDIT';

/** The one definition of the audit stream, so publishers and audit-log create it identically. */
export const AUDIT_STREAM_CONFIG: StreamConfig = {
  name: AUDIT_STREAM,
  subjects: ['hcp.audit.>'],
};

/** Subject token per endpoint family (proto/hcp/audit/v1/audit_log.proto header). */
const SUBJECT_TOKENS: Readonly<Record<EndpointFamily, string>> = {
  'tools/call': 'tools_call',
  'tools/list': 'tools_list',
  'handle/peek': 'handle_peek',
  'handle/pipe': 'handle_pipe',
  protocol: 'protocol',
  grant: 'grant',
  approval: 'approval',
};

/** The subject an entry of this family is published on, e.g. `hcp.audit.tools_call`. */
export function auditSubject(family: EndpointFamily): string {
  return `hcp.audit.${SUBJECT_TOKENS[family]}`;
}

/** Creates the audit stream if absent; idempotent, used by publishers and by audit-log. */
export function ensureAuditStream(bus: EventBus): Promise<void> {
  return bus.ensureStream(AUDIT_STREAM_CONFIG);
}

/** The binary AuditEvent payload for an entry (what the publisher sends; tests publish it directly). */
export function encodeAuditEvent(
  entry: AuditEntry,
  source: string,
  publishedAt: number,
): Uint8Array {
  return audit.AuditEvent.encode({
    entry: auditEntryToProto(entry),
    source,
    publishedAt: toTimestamp(publishedAt),
  }).finish();
}

/** Tuning of one publisher; only `source` is required. */
export interface AuditPublisherOptions {
  /** Name of the publishing service, carried in every AuditEvent. */
  readonly source: string;
  /** Bound of the local buffer (accepted, not yet acknowledged entries); default 10 000. */
  readonly maxBuffered?: number;
  /** First retry delay after a failed publish; doubles up to maxRetryMs. Default 200 ms. */
  readonly retryMs?: number;
  /** Upper bound of the retry delay; default 5000 ms. */
  readonly maxRetryMs?: number;
  /** A publish not acknowledged within this time counts as failed and is retried; default 5000 ms. */
  readonly publishTimeoutMs?: number;
  /** Largest encoded AuditEvent accepted (NATS refuses payloads over its max_payload); default 256 KiB. */
  readonly maxEventBytes?: number;
}

/**
 * How a service records audit entries (I7). It never blocks the caller on the bus and never
 * loses an entry silently: a full buffer refuses, and the edge refuses work in turn.
 */
export interface AuditPublisher {
  /**
   * Accepts an entry into the bounded buffer and returns at once; delivery to JetStream happens in
   * order in the background with retries (msgId = entry.id, so a retry is stored once). Throws
   * HcpError('AUDIT_UNAVAILABLE') when the buffer is full or the publisher is closed.
   */
  record(entry: AuditEntry): void;
  /** False while the buffer is at its bound (or closed): the edge must refuse new work (I7). */
  available(): boolean;
  /** Entries accepted but not yet acknowledged by JetStream. */
  readonly pending: number;
  /** Resolves when everything accepted so far is acknowledged, or rejects after timeoutMs (default 10 s). */
  flush(timeoutMs?: number): Promise<void>;
  /** Flushes (bounded, default 5 s) and stops; entries still unacknowledged are logged with their ids. */
  close(timeoutMs?: number): Promise<void>;
}

interface Queued {
  readonly entry: AuditEntry;
  readonly data: Uint8Array;
}

interface FlushWaiter {
  readonly target: number;
  readonly resolve: () => void;
}

const log = createLogger('AuditPublisher');

class BufferedAuditPublisher implements AuditPublisher {
  private readonly queue: Queued[] = [];
  private readonly waiters = new Set<FlushWaiter>();
  private readonly max: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly publishTimeoutMs: number;
  private readonly maxEventBytes: number;
  /** Count of entries ever accepted / ever acknowledged; flush waits for the second to reach the first. */
  private accepted = 0;
  private acked = 0;
  private running = false;
  private closed = false;
  /** Set when close() stopped waiting: the delivery loop ends instead of retrying forever. */
  private stopped = false;
  private streamReady: boolean;
  private wasFull = false;
  private cancelSleep: (() => void) | undefined;

  constructor(
    private readonly bus: EventBus,
    private readonly options: AuditPublisherOptions,
    streamReady: boolean,
  ) {
    this.max = options.maxBuffered ?? 10_000;
    this.retryMs = options.retryMs ?? 200;
    this.maxRetryMs = Math.max(options.maxRetryMs ?? 5000, this.retryMs);
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5000;
    this.maxEventBytes = options.maxEventBytes ?? 256 * 1024;
    this.streamReady = streamReady;
  }

  get pending(): number {
    return this.queue.length;
  }

  available(): boolean {
    return !this.closed && this.queue.length < this.max;
  }

  record(entry: AuditEntry): void {
    if (this.closed) throw new HcpError('AUDIT_UNAVAILABLE', 'the audit publisher is closed');
    if (this.queue.length >= this.max) {
      if (!this.wasFull) {
        this.wasFull = true;
        log.error(
          { maxBuffered: this.max, entryId: entry.id },
          'audit buffer full: refusing entries until the bus acknowledges the backlog',
        );
      }
      throw new HcpError(
        'AUDIT_UNAVAILABLE',
        `the audit buffer is full (${this.max} entries not yet acknowledged)`,
        { maxBuffered: this.max },
      );
    }
    // Checked here, not at delivery: an event the bus refuses for good would otherwise sit at the
    // head of the queue forever and block every entry behind it.
    if (entry.id === '' || !(entry.endpointFamily in SUBJECT_TOKENS))
      throw new HcpError('INPUT_INVALID', 'audit entry needs an id and a known endpoint family', {
        entryId: entry.id,
      });
    const data = encodeAuditEvent(entry, this.options.source, Date.now());
    if (data.length > this.maxEventBytes)
      throw new HcpError(
        'PAYLOAD_TOO_LARGE',
        `audit event of ${data.length} bytes exceeds ${this.maxEventBytes}`,
        { entryId: entry.id, bytes: data.length, maxEventBytes: this.maxEventBytes },
      );
    this.queue.push({ entry, data });
    this.accepted++;
    if (!this.running) void this.run();
  }

  flush(timeoutMs = 10_000): Promise<void> {
    const target = this.accepted;
    if (this.acked >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new HcpError(
            'AUDIT_UNAVAILABLE',
            `audit flush timed out after ${timeoutMs} ms with ${this.queue.length} entries pending`,
            { pending: this.queue.length },
          ),
        );
      }, timeoutMs);
      const waiter: FlushWaiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.add(waiter);
    });
  }

  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush(timeoutMs);
    } catch {
      // Fall through: what is left is reported below, never dropped without a trace.
    }
    this.stopped = true;
    this.cancelSleep?.();
    if (this.queue.length > 0) {
      log.error(
        { count: this.queue.length, entryIds: this.queue.map((q) => q.entry.id) },
        'audit publisher closed with unacknowledged entries',
      );
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    let failures = 0;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const head = this.queue[0]!;
        try {
          await this.deliver(head);
          this.queue.shift();
          this.acked++;
          if (failures > 0) log.info({ failures }, 'audit delivery recovered');
          failures = 0;
          if (this.wasFull && this.queue.length < this.max) {
            this.wasFull = false;
            log.info({ pending: this.queue.length }, 'audit buffer accepting again');
          }
          this.notify();
        } catch (err: unknown) {
          failures++;
          this.streamReady = false;
          const delay = Math.min(this.retryMs * 2 ** Math.min(failures - 1, 20), this.maxRetryMs);
          // First failure and then every tenth: loud enough to see, not a flood during an outage.
          if (failures === 1 || failures % 10 === 0)
            log.warn(
              { err, entryId: head.entry.id, pending: this.queue.length, failures, delay },
              'audit publish failed; retrying',
            );
          if (!(await this.sleep(delay))) break;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async deliver(item: Queued): Promise<void> {
    if (!this.streamReady) {
      // The stream may not exist yet (bus was down at start) or was lost with the server.
      await this.withTimeout(ensureAuditStream(this.bus), 'ensure stream');
      this.streamReady = true;
    }
    await this.withTimeout(
      this.bus.publishDurable(auditSubject(item.entry.endpointFamily), item.data, {
        msgId: item.entry.id,
      }),
      'publish',
    );
  }

  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`audit ${what} not acknowledged within ${this.publishTimeoutMs} ms`)),
        this.publishTimeoutMs,
      );
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** Resolves true after ms, or false at once when close() cancels it. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.cancelSleep = undefined;
        resolve(true);
      }, ms);
      this.cancelSleep = () => {
        clearTimeout(timer);
        this.cancelSleep = undefined;
        resolve(false);
      };
    });
  }

  private notify(): void {
    for (const w of [...this.waiters])
      if (this.acked >= w.target) {
        this.waiters.delete(w);
        w.resolve();
      }
  }
}

/**
 * Creates a publisher and ensures the audit stream. If the bus cannot create the stream now, the
 * publisher still starts and buffers; delivery retries (re-ensuring the stream) until it can.
 */
export async function createAuditPublisher(
  bus: EventBus,
  options: AuditPublisherOptions,
): Promise<AuditPublisher> {
  let ready = false;
  const timeoutMs = options.publishTimeoutMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ensureAuditStream(bus),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not done within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    ready = true;
  } catch (err: unknown) {
    log.warn({ err }, 'audit stream not ensured at start; entries will be buffered and retried');
  } finally {
    clearTimeout(timer);
  }
  return new BufferedAuditPublisher(bus, options, ready);
}
