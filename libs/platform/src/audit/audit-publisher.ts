import { randomUUID } from 'node:crypto';
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

/**
 * One entry as it travels inside an AuditEventBatch: the AuditEvent bytes a single-entry message
 * would carry, and whether its strings are escaped (the frame's form of `Hcp-Audit-Text`).
 */
export interface AuditFrame {
  readonly event: Uint8Array;
  readonly textEscaped: boolean;
}

/** An entry's AuditEvent bytes, escaped and marked only when UTF-8 cannot carry it. */
export function auditEventFrame(
  entry: AuditEntry,
  source: string,
  publishedAt: number,
): AuditFrame {
  if (!auditEntryTexts(entry).some(hasLoneSurrogate) && !hasLoneSurrogate(source))
    return { event: encodeAuditEvent(entry, source, publishedAt), textEscaped: false };
  return {
    event: encodeAuditEvent(
      mapAuditEntryText(entry, escapeAuditText),
      escapeAuditText(source),
      publishedAt,
    ),
    textEscaped: true,
  };
}

/** The payload and headers an entry travels as: escaped and marked only when UTF-8 cannot carry it. */
export function auditEventMessage(
  entry: AuditEntry,
  source: string,
  publishedAt: number,
): { readonly data: Uint8Array; readonly headers: BusHeaders } {
  const { event, textEscaped } = auditEventFrame(entry, source, publishedAt);
  return {
    data: event,
    headers: textEscaped ? { [AUDIT_TEXT_HEADER]: AUDIT_TEXT_ESCAPED } : {},
  };
}

/**
 * The subject of an AuditEventBatch (ADR 0005 §1): many entries in one JetStream message, one
 * publish and one ack for all of them. Inside `hcp.audit.>`, so the same stream and consumer.
 */
export const AUDIT_BATCH_SUBJECT = 'hcp.audit.batch';

/** The wire bytes of an AuditEventBatch (frames in acceptance order; at least one). */
export function encodeAuditBatch(batchId: string, frames: readonly AuditFrame[]): Uint8Array {
  return audit.AuditEventBatch.encode({
    batchId,
    // The generated type says Buffer; the writer copies any Uint8Array.
    frames: frames.map((f) => ({ event: f.event as Buffer, textEscaped: f.textEscaped })),
  }).finish();
}

/** The frames of an AuditEventBatch payload; throws what the proto decoder throws on bad bytes. */
export function decodeAuditBatch(data: Uint8Array): {
  readonly batchId: string;
  readonly frames: readonly AuditFrame[];
} {
  const batch = audit.AuditEventBatch.decode(data);
  return { batchId: batch.batchId, frames: batch.frames };
}

/**
 * The message a batching publisher sends for these entries (tests and audit-log publish it
 * directly): subject, payload and msgId (= batch id, a fresh UUID unless given).
 */
export function auditBatchMessage(
  entries: readonly AuditEntry[],
  source: string,
  publishedAt: number,
  batchId: string = randomUUID(),
): { readonly subject: string; readonly data: Uint8Array; readonly msgId: string } {
  const frames = entries.map((e) => auditEventFrame(e, source, publishedAt));
  return { subject: AUDIT_BATCH_SUBJECT, data: encodeAuditBatch(batchId, frames), msgId: batchId };
}

/** Bytes of a varint holding n (n < 2^32). */
function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Bytes a frame adds to an AuditEventBatch: field tag, length, event field and escape flag. */
function frameWireBytes(f: AuditFrame): number {
  const inner = 1 + varintBytes(f.event.length) + f.event.length + (f.textEscaped ? 2 : 0);
  return 1 + varintBytes(inner) + inner;
}

/** An AuditEventBatch's bytes outside its frames: the batch_id field of a UUID. */
const BATCH_ID_BYTES = 2 + 36;
/** What one frame can add beyond its event bytes (tags, lengths, the flag). */
const FRAME_OVERHEAD_BYTES = 16;
/** NATS's default max_payload (1 MiB) less room for the headers (Nats-Msg-Id). */
const MAX_BATCH_PAYLOAD = 1024 * 1024 - 4096;

/** Upper bound of `audit.AuditEvent`'s size for an entry, computed without encoding it. */
function auditEventSizeBound(e: AuditEntry, source: string): number {
  // Each UTF-16 unit is at most 3 UTF-8 bytes, or 6 once escaped (`\uXXXX`); each string field
  // costs at most 7 bytes of tag and length; times, enums and seq are at most 100 bytes together.
  let units = source.length + e.id.length + e.decisionId.length;
  let fields = 3 + e.handleIds.length;
  for (const h of e.handleIds) units += h.length;
  for (const v of [
    e.principalId,
    e.capabilityId,
    e.resourceRaw,
    e.resourceCanonical,
    e.check,
    e.matchedGrantId,
    e.missingGrant,
    e.rule,
    e.approvalId,
    e.traceId,
    e.prevHash,
    e.hash,
  ])
    if (v !== undefined) {
      units += v.length;
      fields++;
    }
  return 6 * units + 7 * fields + 160;
}

/** Batch sizes counted by `stats()`: 1, 2-3, 4-7, 8-15, 16-63, 64 and more entries. */
export type AuditBatchSizeBucket = '1' | '2-3' | '4-7' | '8-15' | '16-63' | '64+';

/** Cheap counters of what a publisher sent (for benchmarks; ADR 0005 §0 "histograms of batch sizes"). */
export interface AuditPublisherStats {
  /** Messages formed and sent (a retry of the same message is not counted again). */
  readonly batchesSent: number;
  /** Entries in those messages. */
  readonly entriesSent: number;
  /** Largest message, in entries. */
  readonly maxBatch: number;
  /** Messages per size bucket. */
  readonly histogram: Readonly<Record<AuditBatchSizeBucket, number>>;
}

/** The stats of a publisher that sent nothing (test doubles return it). */
export function emptyAuditStats(): AuditPublisherStats {
  return {
    batchesSent: 0,
    entriesSent: 0,
    maxBatch: 0,
    histogram: { '1': 0, '2-3': 0, '4-7': 0, '8-15': 0, '16-63': 0, '64+': 0 },
  };
}

function sizeBucket(n: number): AuditBatchSizeBucket {
  return n <= 1 ? '1' : n < 4 ? '2-3' : n < 8 ? '4-7' : n < 16 ? '8-15' : n < 64 ? '16-63' : '64+';
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
   * Group commit (ADR 0005 §1): entries travel as AuditEventBatch messages on
   * AUDIT_BATCH_SUBJECT, several per publish. Off: one message per entry on its family's subject
   * (what audit-log has always read). Default false until every audit-log reads batches.
   */
  readonly batching?: boolean;
  /**
   * Messages awaiting their ack at once (pipelined on the one connection, sent in order). With
   * batching a message is a batch: default 2, and entries accepted while the window is full go
   * out together in the next batch. Without: one entry each, default 64. 1 is one at a time.
   */
  readonly maxInFlight?: number;
  /** Most entries in one batch; default 256. */
  readonly maxBatchEntries?: number;
  /**
   * Most bytes of one batch; default 512 KiB. Raised to fit one entry of maxEventBytes, and kept
   * below NATS's default max_payload (1 MiB).
   */
  readonly maxBatchBytes?: number;
  /**
   * With batching: how long an entry nobody awaits (`record`) may wait, while a slot is free, for
   * others to join its batch; default 2 ms, 0 sends at once. An awaited entry (`recordDurable`,
   * `flush`) never lingers, and takes the lingering ones with it.
   */
  readonly lingerMs?: number;
}

/**
 * How a service records audit entries (I7). It never blocks the caller on the bus and never
 * loses an entry silently: a full buffer refuses, and the edge refuses work in turn.
 */
export interface AuditPublisher {
  /**
   * Accepts an entry into the bounded buffer and returns at once; delivery to JetStream happens in
   * the background, in order (up to maxInFlight messages pipelined), with retries: a message
   * (one entry, msgId = entry.id; or a batch, msgId = batch id) is immutable once formed and a
   * retry resends it unchanged, so it is stored once. After a failed publish, messages sent
   * behind it that were stored stay where they are and the failed one follows them: acceptance
   * order is kept except around a failure. Throws HcpError('AUDIT_UNAVAILABLE') when the buffer
   * is full or the publisher is closed, INPUT_INVALID or PAYLOAD_TOO_LARGE for an entry the bus
   * could never take.
   */
  record(entry: AuditEntry): void;
  /**
   * Accepts an entry like `record` and resolves once that entry is durable (the message holding
   * it is acknowledged by JetStream); it is sent at once if the window has room. Throws
   * synchronously, as `record` does, when the entry cannot be accepted (then it is not in the
   * buffer); the promise rejects with HcpError('AUDIT_UNAVAILABLE') only when the accepted entry
   * is not durable within timeoutMs (default 10 s) — it then stays buffered and is still
   * delivered later. It waits for this entry only, not for everything accepted before.
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
  /** What was sent so far: messages, entries, batch sizes. */
  stats(): AuditPublisherStats;
}

/** One accepted entry. */
interface Queued {
  readonly entry: AuditEntry;
  /** Acceptance order, from 0. */
  readonly seq: number;
  /** Acceptance time (ms); the event's publishedAt, and the start of its linger. */
  readonly at: number;
  /** The encoded event, once encoded (at acceptance when its size had to be checked exactly). */
  frame: AuditFrame | undefined;
  /** Resolves the recordDurable waiting for this entry, if any. */
  durable: (() => void) | undefined;
}

/** One message: a single entry, or a batch. Immutable once formed; a retry resends it as it is. */
interface Outgoing {
  readonly subject: string;
  readonly msgId: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  readonly items: readonly Queued[];
  /** queued: not sent (or to be resent); sending: awaiting its ack; acked: stored; failed: to retry. */
  state: 'queued' | 'sending' | 'acked' | 'failed';
}

interface FlushWaiter {
  readonly target: number;
  readonly resolve: () => void;
}

const log = createLogger('AuditPublisher');

class BufferedAuditPublisher implements AuditPublisher {
  /** Accepted entries not yet formed into a message, in acceptance order. */
  private readonly waiting: Queued[] = [];
  /** Messages from the oldest unacknowledged one on (acked ones behind it wait to be dropped). */
  private readonly messages: Outgoing[] = [];
  private readonly waiters = new Set<FlushWaiter>();
  private readonly max: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly publishTimeoutMs: number;
  private readonly maxEventBytes: number;
  private readonly maxInFlight: number;
  private readonly batching: boolean;
  private readonly maxBatchEntries: number;
  private readonly maxBatchBytes: number;
  private readonly lingerMs: number;
  /** Entries ever accepted / dropped from the head once acknowledged; flush waits for the second. */
  private accepted = 0;
  private acked = 0;
  /** Entries accepted and not yet acknowledged (what `pending` reports). */
  private unacked = 0;
  /** Waiting entries with seq below this go out as soon as a slot is free (no linger). */
  private urgentBefore = 0;
  /** Index in `messages` of the next message to send. */
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
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly counts = {
    batchesSent: 0,
    entriesSent: 0,
    maxBatch: 0,
    histogram: emptyAuditStats().histogram as Record<AuditBatchSizeBucket, number>,
  };

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
    this.batching = options.batching ?? false;
    this.maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? (this.batching ? 2 : 64)));
    this.maxBatchEntries = Math.max(1, Math.floor(options.maxBatchEntries ?? 256));
    // A batch always fits one entry of maxEventBytes, even if that is over max_payload (then a
    // single-entry message would be refused as well).
    this.maxBatchBytes = Math.max(
      Math.min(options.maxBatchBytes ?? 512 * 1024, MAX_BATCH_PAYLOAD),
      this.maxEventBytes + BATCH_ID_BYTES + FRAME_OVERHEAD_BYTES,
    );
    this.lingerMs = Math.max(0, options.lingerMs ?? 2);
    this.streamReady = streamReady;
  }

  get pending(): number {
    return this.unacked;
  }

  available(): boolean {
    return !this.closed && this.unacked < this.max;
  }

  stats(): AuditPublisherStats {
    return { ...this.counts, histogram: { ...this.counts.histogram } };
  }

  record(entry: AuditEntry): void {
    const q = this.accept(entry);
    // While the window is full the entry waits for an ack anyway: it goes with the next batch.
    if (this.inFlight >= this.maxInFlight) this.urgentBefore = q.seq + 1;
    this.pump();
  }

  recordDurable(entry: AuditEntry, timeoutMs = 10_000): Promise<void> {
    const q = this.accept(entry);
    this.urgentBefore = q.seq + 1;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        q.durable = undefined;
        reject(
          new HcpError(
            'AUDIT_UNAVAILABLE',
            `audit entry not acknowledged within ${timeoutMs} ms (${this.unacked} entries pending)`,
            { entryId: entry.id, pending: this.unacked },
          ),
        );
      }, timeoutMs);
      q.durable = () => {
        clearTimeout(timer);
        resolve();
      };
      this.pump();
    });
  }

  flush(timeoutMs = 10_000): Promise<void> {
    const target = this.accepted;
    if (this.acked >= target) return Promise.resolve();
    this.urgentBefore = target;
    this.pump();
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
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.unacked > 0) {
      log.error(
        {
          count: this.unacked,
          entryIds: [
            ...this.messages.filter((m) => m.state !== 'acked').flatMap((m) => m.items),
            ...this.waiting,
          ].map((q) => q.entry.id),
        },
        'audit publisher closed with unacknowledged entries',
      );
    }
  }

  /** Checks and buffers an entry; throws (buffering nothing) when it cannot be accepted. */
  private accept(entry: AuditEntry): Queued {
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
    const at = Date.now();
    let frame: AuditFrame | undefined;
    // Encoding waits for the message (off the caller's path, ADR 0005 §1) unless the size bound
    // cannot rule out an oversized event; then it is encoded now, exactly, and the bytes kept.
    if (auditEventSizeBound(entry, this.options.source) > this.maxEventBytes) {
      frame = auditEventFrame(entry, this.options.source, at);
      if (frame.event.length > this.maxEventBytes)
        throw new HcpError(
          'PAYLOAD_TOO_LARGE',
          `audit event of ${frame.event.length} bytes exceeds ${this.maxEventBytes}`,
          { entryId: entry.id, bytes: frame.event.length, maxEventBytes: this.maxEventBytes },
        );
    }
    const q: Queued = { entry, seq: this.accepted, at, frame, durable: undefined };
    this.waiting.push(q);
    this.accepted++;
    this.unacked++;
    return q;
  }

  /** Sends formed messages, then forms new ones from waiting entries, while the window has room. */
  private pump(): void {
    if (this.stopped || this.failedRound || this.backingOff || this.ensuring) return;
    if (!this.streamReady) {
      // The stream may not exist yet (bus was down at start) or was lost with the server.
      if (this.cursor >= this.messages.length && this.waiting.length === 0) return;
      this.ensuring = true;
      this.withTimeout(ensureAuditStream(this.bus), 'ensure stream').then(
        () => {
          this.ensuring = false;
          this.streamReady = true;
          this.pump();
        },
        (err: unknown) => {
          this.ensuring = false;
          this.onFailure(err, this.messages[this.cursor]);
        },
      );
      return;
    }
    while (this.inFlight < this.maxInFlight && this.cursor < this.messages.length) {
      const m = this.messages[this.cursor++]!;
      if (m.state === 'acked') continue; // stored in an earlier round, behind a failed one
      this.send(m);
    }
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      if (!this.due()) {
        this.lingerUntilDue();
        return;
      }
      const m = this.form();
      this.messages.push(m);
      this.cursor = this.messages.length;
      this.send(m);
    }
  }

  /** True when the waiting entries should go now rather than linger for company. */
  private due(): boolean {
    if (!this.batching || this.lingerMs === 0) return true;
    const head = this.waiting[0]!;
    return (
      head.seq < this.urgentBefore ||
      this.waiting.length >= this.maxBatchEntries ||
      Date.now() - head.at >= this.lingerMs
    );
  }

  private lingerUntilDue(): void {
    if (this.lingerTimer !== undefined) return;
    const wait = Math.max(1, this.waiting[0]!.at + this.lingerMs - Date.now());
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.pump();
    }, wait);
  }

  /** Forms the next message from the head of `waiting`, within the count and byte bounds. */
  private form(): Outgoing {
    const source = this.options.source;
    const frameOf = (q: Queued): AuditFrame => (q.frame ??= auditEventFrame(q.entry, source, q.at));
    let items: Queued[];
    let m: Omit<Outgoing, 'items' | 'state'>;
    if (!this.batching) {
      const q = this.waiting.shift()!;
      const f = frameOf(q);
      items = [q];
      m = {
        subject: auditSubject(q.entry.endpointFamily),
        msgId: q.entry.id,
        data: f.event,
        headers: f.textEscaped ? { [AUDIT_TEXT_HEADER]: AUDIT_TEXT_ESCAPED } : {},
      };
    } else {
      const frames: AuditFrame[] = [];
      let bytes = BATCH_ID_BYTES;
      while (frames.length < this.waiting.length && frames.length < this.maxBatchEntries) {
        const f = frameOf(this.waiting[frames.length]!);
        const size = frameWireBytes(f);
        if (frames.length > 0 && bytes + size > this.maxBatchBytes) break;
        frames.push(f);
        bytes += size;
      }
      items = this.waiting.splice(0, frames.length);
      const batchId = randomUUID();
      m = {
        subject: AUDIT_BATCH_SUBJECT,
        msgId: batchId,
        data: encodeAuditBatch(batchId, frames),
        headers: {},
      };
    }
    // The message holds the bytes now; the entries are kept for their ids and waiters.
    for (const q of items) q.frame = undefined;
    const c = this.counts;
    c.batchesSent++;
    c.entriesSent += items.length;
    c.maxBatch = Math.max(c.maxBatch, items.length);
    c.histogram[sizeBucket(items.length)]++;
    return { ...m, items, state: 'queued' };
  }

  private send(m: Outgoing): void {
    m.state = 'sending';
    this.inFlight++;
    this.withTimeout(
      this.bus.publishDurable(m.subject, m.data, { msgId: m.msgId, headers: m.headers }),
      'publish',
    ).then(
      () => {
        this.inFlight--;
        m.state = 'acked';
        this.unacked -= m.items.length;
        for (const q of m.items) {
          q.durable?.();
          q.durable = undefined;
        }
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
        m.state = 'failed';
        this.onFailure(err, m);
      },
    );
  }

  private onFailure(err: unknown, m: Outgoing | undefined): void {
    if (!this.failedRound) {
      this.failedRound = true;
      this.streamReady = false;
      // First failure and then every tenth round: loud enough to see, not a flood during an outage.
      if (this.failures === 0 || (this.failures + 1) % 10 === 0)
        log.warn(
          {
            err,
            msgId: m?.msgId,
            entries: m?.items.length,
            entryId: m?.items[0]?.entry.id,
            pending: this.unacked,
            failures: this.failures + 1,
          },
          'audit publish failed; retrying',
        );
    }
    this.retryWhenSettled();
  }

  /**
   * Once nothing is in flight, waits the backoff and resends from the oldest unacknowledged
   * message, in order, byte for byte. Messages already stored are not resent; one whose ack was
   * lost is (its msgId dedupes it).
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
      for (const m of this.messages) if (m.state !== 'acked') m.state = 'queued';
      this.cursor = 0;
      this.pump();
    });
  }

  /** Drops acknowledged messages from the head and wakes the flushes they complete. */
  private dropAcked(): void {
    let n = 0;
    let entries = 0;
    while (n < this.messages.length && this.messages[n]!.state === 'acked')
      entries += this.messages[n++]!.items.length;
    if (n === 0) return;
    this.messages.splice(0, n);
    this.cursor = Math.max(0, this.cursor - n);
    this.acked += entries;
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
