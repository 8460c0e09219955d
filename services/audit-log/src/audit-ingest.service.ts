import {
  AUDIT_STREAM,
  createLogger,
  ensureAuditStream,
  type DurableMessage,
  type EventBus,
  type Subscription,
} from '@hcp/platform';
import type { AuditEntry } from '@hcp/core';
import type { AppendResult, AuditEntryRepository } from './audit-entry.repository';
import type { AuditRejectRepository } from './audit-reject.repository';
import { parseAuditEvent } from './audit-event.validation';

/** The durable consumer name audit-log reads HCP_AUDIT with; its position survives restarts. */
export const AUDIT_DURABLE = 'audit-log';

/** What happened to one delivered message. */
export type IngestOutcome = 'appended' | 'duplicate' | 'rejected';

/** Counters since start, for logs and tests. */
export interface IngestStats {
  appended: number;
  duplicates: number;
  rejected: number;
}

/** How the consumer runs. */
export interface IngestOptions {
  /** Durable consumer name; default `audit-log`. */
  readonly durable?: string;
  /** Redelivery delay of an unacknowledged message; default 30 s. */
  readonly ackWaitMs?: number;
  /** Epoch millis for ingested_at and received_at; default Date.now. */
  readonly clock?: () => number;
  /**
   * Most waiting events appended in one transaction (one head lock, one commit); default 128.
   * 1 appends one at a time, and keeps stream order across several audit-log processes.
   */
  readonly maxBatch?: number;
}

/**
 * SQLSTATE classes that will fail the same way on every retry: data exceptions (22) and
 * integrity violations (23). Anything else (connection lost, server restarting) is retried.
 */
function isPermanent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/**
 * Reads the audit stream with one durable consumer and appends each event to the chain. A
 * message is acknowledged only after its entry (or its dead-letter row) is committed; a database
 * outage therefore holds the stream, while a bad event is parked in audit_rejects and passed.
 */
export class AuditIngestService {
  private readonly log = createLogger('AuditIngestService');
  private subscription: Subscription | undefined;
  private inFlight: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;
  readonly stats: IngestStats = { appended: 0, duplicates: 0, rejected: 0 };

  constructor(
    private readonly bus: EventBus,
    private readonly entries: AuditEntryRepository,
    private readonly rejects: AuditRejectRepository,
    private readonly options: IngestOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
  }

  /** True while the consumer is attached. */
  get running(): boolean {
    return this.subscription !== undefined;
  }

  /** Ensures the stream and attaches the durable consumer. */
  async start(): Promise<void> {
    if (this.subscription !== undefined) return;
    await ensureAuditStream(this.bus);
    this.subscription = await this.bus.consumeDurableBatch(
      {
        stream: AUDIT_STREAM,
        durable: this.options.durable ?? AUDIT_DURABLE,
        maxBatch: this.options.maxBatch ?? 128,
        ...(this.options.ackWaitMs !== undefined ? { ackWaitMs: this.options.ackWaitMs } : {}),
      },
      (msgs) => {
        const p = this.handleBatch(msgs);
        this.inFlight = p.catch(() => undefined);
        return p.then(() => undefined);
      },
    );
  }

  /** Detaches the consumer and waits for the message being processed, so nothing is half-done. */
  async stop(): Promise<void> {
    const sub = this.subscription;
    this.subscription = undefined;
    if (sub !== undefined) await sub.unsubscribe();
    await this.inFlight;
  }

  /**
   * Processes deliveries in stream order: bad events are parked, the rest appended in one
   * transaction. Resolves once every one may be acknowledged (committed); throws to have them all
   * redelivered. When the database refuses the batch for good, each is retried on its own, so
   * only the event it refuses is parked.
   */
  async handleBatch(msgs: readonly DurableMessage[]): Promise<IngestOutcome[]> {
    if (msgs.length === 1) return [await this.handle(msgs[0]!)];
    const outcomes: (IngestOutcome | undefined)[] = [];
    const valid: { msg: DurableMessage; index: number; entry: AuditEntry; source: string }[] = [];
    for (const [index, msg] of msgs.entries()) {
      const parsed = parseAuditEvent(msg.data);
      if (!parsed.ok) {
        await this.reject(msg, parsed.reason, parsed.entryId, parsed.source);
        outcomes[index] = 'rejected';
      } else valid.push({ msg, index, entry: parsed.entry, source: parsed.source });
    }
    let results;
    try {
      results = await this.entries.appendBatch(valid, this.clock());
    } catch (err: unknown) {
      if (!isPermanent(err)) throw err; // all redelivered after the nak delay
      this.log.warn({ err, count: valid.length }, 'batch refused; appending one at a time');
      for (const v of valid) outcomes[v.index] = await this.handle(v.msg);
      return outcomes as IngestOutcome[];
    }
    for (const [i, v] of valid.entries())
      outcomes[v.index] = await this.settle(v.msg, v.entry, v.source, results[i]!);
    return outcomes as IngestOutcome[];
  }

  /** Processes one delivery; resolves once it may be acknowledged, throws to have it redelivered. */
  async handle(msg: DurableMessage): Promise<IngestOutcome> {
    const parsed = parseAuditEvent(msg.data);
    if (!parsed.ok) {
      await this.reject(msg, parsed.reason, parsed.entryId, parsed.source);
      return 'rejected';
    }
    const { entry, source } = parsed;
    let result;
    try {
      result = await this.entries.append(entry, source, this.clock());
    } catch (err: unknown) {
      if (!isPermanent(err)) throw err; // redelivered after ack wait / nak delay
      await this.reject(
        msg,
        `database refused the entry: ${(err as Error).message}`,
        entry.id,
        source,
      );
      return 'rejected';
    }
    return this.settle(msg, entry, source, result);
  }

  /** Counts an append's result; a same-id event with different facts is parked as evidence. */
  private async settle(
    msg: DurableMessage,
    entry: AuditEntry,
    source: string,
    result: AppendResult,
  ): Promise<IngestOutcome> {
    if (result.status === 'appended') {
      this.stats.appended++;
      return 'appended';
    }
    if (!result.sameContent) {
      // Same id, different facts: keep the first (already chained) and park the second as evidence.
      await this.reject(
        msg,
        `entry.id: already stored at seq ${result.seq} with different content`,
        entry.id,
        source,
      );
      return 'rejected';
    }
    this.stats.duplicates++;
    this.log.debug({ entryId: entry.id, seq: result.seq }, 'duplicate audit event skipped');
    return 'duplicate';
  }

  private async reject(
    msg: DurableMessage,
    reason: string,
    entryId: string | undefined,
    source: string | undefined,
  ): Promise<void> {
    this.log.error(
      { streamSeq: msg.seq, subject: msg.subject, entryId, source, reason },
      'audit event rejected into audit_rejects',
    );
    await this.rejects.insert({
      streamSeq: msg.seq,
      subject: msg.subject,
      ...(entryId !== undefined ? { entryId } : {}),
      ...(source !== undefined ? { source } : {}),
      reason,
      payload: msg.data,
      receivedAt: this.clock(),
    });
    this.stats.rejected++;
  }
}
