import { HcpError, type AuditEntry, type EndpointFamily } from '@hcp/core';
import { audit, auditEntryToProto, toTimestamp } from '@hcp/proto';
import type { BusHeaders, EventBus, StreamConfig } from '../bus/event-bus';
import {
  auditEntryTexts,
  escapeAuditText,
  hasLoneSurrogate,
  mapAuditEntryText,
} from './audit-text';
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

/**
 * Header of an audit event whose entry strings are escaped (`escapeAuditText`), with its value.
 * A proto3 `string` is UTF-8, which has no form for a lone surrogate; such an entry travels
 * escaped, marked by this header, and audit-log unescapes it, so it stores what was recorded.
 */
export const AUDIT_TEXT_HEADER = 'Hcp-Audit-Text';
export const AUDIT_TEXT_ESCAPED = 'json-escaped';

/** The payload and headers an entry travels as: escaped and marked only when UTF-8 cannot carry it. */
export function auditEventMessage(
  entry: AuditEntry,
  source: string,
  publishedAt: number,
): { readonly data: Uint8Array; readonly headers: BusHeaders } {
  if (!auditEntryTexts(entry).some(hasLoneSurrogate) && !hasLoneSurrogate(source))
    return { data: encodeAuditEvent(entry, source, publishedAt), headers: {} };
  return {
    data: encodeAuditEvent(
      mapAuditEntryText(entry, escapeAuditText),
      escapeAuditText(source),
      publishedAt,
    ),
    headers: { [AUDIT_TEXT_HEADER]: AUDIT_TEXT_ESCAPED },
  };
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
  /**
   * Publishes awaiting their ack at once (pipelined on the one connection, sent in order); default
   * 64. 1 is the old one-ack-at-a-time behaviour. Bounds what a stalled bus has outstanding.
   */
  readonly maxInFlight?: number;
}

/**
 * How a service records audit entries (I7). It never blocks the caller on the bus and never
 * loses an entry silently: a full buffer refuses, and the edge refuses work in turn.
 */
export interface AuditPublisher {
  /**
   * Accepts an entry into the bounded buffer and returns at once; delivery to JetStream happens in
   * the background, in order (up to maxInFlight publishes pipelined), with retries (msgId =
   * entry.id, so a retry is stored once). After a failed publish, entries sent behind it that were
   * stored stay where they are and the failed one follows them: acceptance order is kept except
   * around a failure. Throws
   * HcpError('AUDIT_UNAVAILABLE') when the buffer is full or the publisher is closed.
   */
  record(entry: AuditEntry): void;
  /**
   * Accepts an entry like `record` and resolves once that entry is durable (acknowledged by
   * JetStream). Throws synchronously, as `record` does, when the entry cannot be accepted (then it
   * is not in the buffer); the promise rejects with HcpError('AUDIT_UNAVAILABLE') only when the
   * accepted entry is not durable within timeoutMs (default 10 s) — it then stays buffered and is
   * still delivered later. It waits for this entry only, not for everything accepted before.
   */
  recordDurable(entry: AuditEntry, timeoutMs?: number): Promise<void>;
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
  readonly headers: BusHeaders;
  /** queued: not sent (or to be resent); sending: awaiting its ack; acked: stored; failed: to retry. */
  state: 'queued' | 'sending' | 'acked' | 'failed';
}

interface FlushWaiter {
  readonly target: number;
  readonly resolve: () => void;
}

const log = createLogger('AuditPublisher');

class BufferedAuditPublisher implements AuditPublisher {
  /** Accepted entries from the oldest unacknowledged one on (acked ones behind it wait to be dropped). */
  private readonly queue: Queued[] = [];
  private readonly waiters = new Set<FlushWaiter>();
  private readonly max: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly publishTimeoutMs: number;
  private readonly maxEventBytes: number;
  private readonly maxInFlight: number;
  /** Entries ever accepted / dropped from the head once acknowledged; flush waits for the second. */
  private accepted = 0;
  private acked = 0;
  /** Entries in `queue` not yet acknowledged (what `pending` reports). */
  private unacked = 0;
  /** Index in `queue` of the next entry to send. */
  private cursor = 0;
  private inFlight = 0;
  /** A publish failed: nothing new is sent until the in-flight ones settle and the retry is due. */
  private failedRound = false;
  private backingOff = false;
  private ensuring = false;
  /** Consecutive failed rounds; sets the backoff. */
  private failures = 0;
  private closed = false;
  /** Set when close() stopped waiting: delivery ends instead of retrying forever. */
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
    this.maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 64));
    this.streamReady = streamReady;
  }

  get pending(): number {
    return this.unacked;
  }

  available(): boolean {
    return !this.closed && this.unacked < this.max;
  }

  record(entry: AuditEntry): void {
    if (this.closed) throw new HcpError('AUDIT_UNAVAILABLE', 'the audit publisher is closed');
    if (this.unacked >= this.max) {
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
    // Checked here, not at delivery: an event the bus refuses for good would otherwise be retried
    // forever and hold every flush behind it.
    if (entry.id === '' || !(entry.endpointFamily in SUBJECT_TOKENS))
      throw new HcpError('INPUT_INVALID', 'audit entry needs an id and a known endpoint family', {
        entryId: entry.id,
      });
    const { data, headers } = auditEventMessage(entry, this.options.source, Date.now());
    if (data.length > this.maxEventBytes)
      throw new HcpError(
        'PAYLOAD_TOO_LARGE',
        `audit event of ${data.length} bytes exceeds ${this.maxEventBytes}`,
        { entryId: entry.id, bytes: data.length, maxEventBytes: this.maxEventBytes },
      );
    this.queue.push({ entry, data, headers, state: 'queued' });
    this.accepted++;
    this.unacked++;
    this.pump();
  }

  recordDurable(entry: AuditEntry, timeoutMs = 10_000): Promise<void> {
    this.record(entry);
    // Until batches are acknowledged per entry, waiting for everything accepted so far is the
    // (stronger) stand-in: this entry is among them.
    return this.flush(timeoutMs);
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
            `audit flush timed out after ${timeoutMs} ms with ${this.unacked} entries pending`,
            { pending: this.unacked },
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
    if (this.unacked > 0) {
      log.error(
        {
          count: this.unacked,
          entryIds: this.queue.filter((q) => q.state !== 'acked').map((q) => q.entry.id),
        },
        'audit publisher closed with unacknowledged entries',
      );
    }
  }

  /** Sends queued entries, in order, while the window has room and no failed round is pending. */
  private pump(): void {
    if (this.stopped || this.failedRound || this.backingOff || this.ensuring) return;
    if (!this.streamReady) {
      // The stream may not exist yet (bus was down at start) or was lost with the server.
      if (this.cursor >= this.queue.length) return;
      this.ensuring = true;
      this.withTimeout(ensureAuditStream(this.bus), 'ensure stream').then(
        () => {
          this.ensuring = false;
          this.streamReady = true;
          this.pump();
        },
        (err: unknown) => {
          this.ensuring = false;
          this.onFailure(err, this.queue[this.cursor]);
        },
      );
      return;
    }
    while (this.inFlight < this.maxInFlight && this.cursor < this.queue.length) {
      const item = this.queue[this.cursor++]!;
      if (item.state === 'acked') continue; // stored in an earlier round, behind a failed one
      this.send(item);
    }
  }

  private send(item: Queued): void {
    item.state = 'sending';
    this.inFlight++;
    this.withTimeout(
      this.bus.publishDurable(auditSubject(item.entry.endpointFamily), item.data, {
        msgId: item.entry.id,
        headers: item.headers,
      }),
      'publish',
    ).then(
      () => {
        this.inFlight--;
        item.state = 'acked';
        this.unacked--;
        if (this.failures > 0 && !this.failedRound) {
          log.info({ failures: this.failures }, 'audit delivery recovered');
          this.failures = 0;
        }
        this.dropAcked();
        if (this.failedRound) this.retryWhenSettled();
        else this.pump();
      },
      (err: unknown) => {
        this.inFlight--;
        item.state = 'failed';
        this.onFailure(err, item);
      },
    );
  }

  private onFailure(err: unknown, item: Queued | undefined): void {
    if (!this.failedRound) {
      this.failedRound = true;
      this.streamReady = false;
      // First failure and then every tenth round: loud enough to see, not a flood during an outage.
      if (this.failures === 0 || (this.failures + 1) % 10 === 0)
        log.warn(
          { err, entryId: item?.entry.id, pending: this.unacked, failures: this.failures + 1 },
          'audit publish failed; retrying',
        );
    }
    this.retryWhenSettled();
  }

  /**
   * Once nothing is in flight, waits the backoff and resends from the oldest unacknowledged entry,
   * in order. Entries already stored are not resent; one whose ack was lost is (msgId dedupes it).
   */
  private retryWhenSettled(): void {
    if (this.inFlight > 0 || this.ensuring || this.backingOff || this.stopped) return;
    this.failures++;
    const delay = Math.min(this.retryMs * 2 ** Math.min(this.failures - 1, 20), this.maxRetryMs);
    this.backingOff = true;
    void this.sleep(delay).then((due) => {
      this.backingOff = false;
      if (!due) return;
      this.failedRound = false;
      for (const q of this.queue) if (q.state !== 'acked') q.state = 'queued';
      this.cursor = 0;
      this.pump();
    });
  }

  /** Drops acknowledged entries from the head and wakes the flushes they complete. */
  private dropAcked(): void {
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.state === 'acked') n++;
    if (n === 0) return;
    this.queue.splice(0, n);
    this.cursor = Math.max(0, this.cursor - n);
    this.acked += n;
    if (this.wasFull && this.unacked < this.max) {
      this.wasFull = false;
      log.info({ pending: this.unacked }, 'audit buffer accepting again');
    }
    for (const w of [...this.waiters])
      if (this.acked >= w.target) {
        this.waiters.delete(w);
        w.resolve();
      }
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
