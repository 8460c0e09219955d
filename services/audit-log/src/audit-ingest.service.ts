import {
  AUDIT_BATCH_SUBJECT,
  AUDIT_STREAM,
  AUDIT_TEXT_ESCAPED,
  AUDIT_TEXT_HEADER,
  createLogger,
  ensureAuditStream,
  type DurableMessage,
  type EventBus,
  type Subscription,
} from '@hcp/platform';
import type { AuditEntry } from '@hcp/core';
import { audit } from '@hcp/proto';
import type { AppendResult, AuditEntryRepository } from './audit-entry.repository';
import { parseAuditEvent, type ParsedAuditEvent } from './audit-event.validation';
import { ingestRefusalEntry, type RefusedDelivery } from './audit-refusal';

/** The durable consumer name audit-log reads HCP_AUDIT with; its position survives restarts. */
export const AUDIT_DURABLE = 'audit-log';

/** The `source` of the entries audit-log writes itself (ingest refusals, its API's refusals). */
export const OWN_SOURCE = 'audit-log';

/**
 * What happened to one delivered message: appended as its entry, skipped as a duplicate, or
 * `rejected`: not storable as an entry, so an ingest refusal entry holding its bytes was appended.
 */
export type IngestOutcome = 'appended' | 'duplicate' | 'rejected';

/** Upper bounds of the batch size buckets: a size lands in the first bound it does not exceed. */
export const BATCH_SIZE_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128, 256] as const;

/** Counters since start, for logs, tests and the benchmark. */
export interface IngestStats {
  appended: number;
  duplicates: number;
  /** Deliveries recorded as ingest refusal entries (never dropped). */
  rejected: number;
  /** Committed appends (each one statement on the writer's common path, ADR 0005 §1). */
  batches: number;
  /**
   * Entries per committed append, bucketed: the count of appends whose size is at most the
   * bucket's bound and above the previous one (not cumulative). Shows whether group commit
   * groups anything. Keys: each bound of BATCH_SIZE_BOUNDS as text, and `+Inf` above the last.
   */
  batchSizes: Record<string, number>;
}

/** Fresh counters. */
export function emptyIngestStats(): IngestStats {
  const batchSizes: Record<string, number> = {};
  for (const b of BATCH_SIZE_BOUNDS) batchSizes[`${b}`] = 0;
  batchSizes['+Inf'] = 0;
  return { appended: 0, duplicates: 0, rejected: 0, batches: 0, batchSizes };
}

/** Counts one committed append of `size` entries. */
export function recordBatchSize(stats: IngestStats, size: number): void {
  const bound = BATCH_SIZE_BOUNDS.find((b) => size <= b);
  stats.batches++;
  const key = bound === undefined ? '+Inf' : `${bound}`;
  stats.batchSizes[key] = (stats.batchSizes[key] ?? 0) + 1;
}

/** How the consumer runs. */
export interface IngestOptions {
  /** Durable consumer name; default `audit-log`. */
  readonly durable?: string;
  /** Redelivery delay of an unacknowledged message; default 30 s. */
  readonly ackWaitMs?: number;
  /** Epoch millis for ingested_at and received_at; default Date.now. */
  readonly clock?: () => number;
  /** How often the batch size histogram is logged while it changes; default 60 s, 0 never. */
  readonly statsLogMs?: number;
  /**
   * Most waiting messages taken and appended in one statement; default 128 (a batch message
   * carries several entries). 1 appends one message at a time, and keeps stream order across
   * several audit-log processes.
   */
  readonly maxBatch?: number;
}

/**
 * SQLSTATE classes that will fail the same way on every retry: data exceptions (22), integrity
 * violations (23) and program limits (54, e.g. an index row too large). Anything else (connection
 * lost, server restarting) is retried.
 */
function isPermanent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/**
 * Reads the audit stream with one durable consumer and appends each event to the chain. A
 * message is acknowledged only after its entry is committed; a database outage therefore holds
 * the stream. Nothing is dropped: an event that cannot be an entry of its own is recorded in the
 * chain as an ingest refusal entry with its bytes (audit-refusal.ts), and the stream moves on.
 */
export class AuditIngestService {
  private readonly log = createLogger('AuditIngestService');
  private subscription: Subscription | undefined;
  private inFlight: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;
  readonly stats: IngestStats = emptyIngestStats();
  private statsTimer: NodeJS.Timeout | undefined;
  private loggedBatches = 0;

  constructor(
    private readonly bus: EventBus,
    private readonly entries: AuditEntryRepository,
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
    const every = this.options.statsLogMs ?? 60_000;
    if (every > 0 && this.statsTimer === undefined) {
      this.statsTimer = setInterval(() => this.logStats(), every);
      this.statsTimer.unref();
    }
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
    if (this.statsTimer !== undefined) clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    this.logStats();
  }

  /** Logs the counters and the batch size histogram, when appends happened since the last time. */
  private logStats(): void {
    if (this.stats.batches === this.loggedBatches) return;
    this.loggedBatches = this.stats.batches;
    this.log.info({ ...this.stats, batchSizes: { ...this.stats.batchSizes } }, 'ingest stats');
  }

  /** Appends entries through the writer and counts the committed batch's size. */
  private async appendCounted(
    items: readonly { readonly entry: AuditEntry; readonly source: string }[],
  ): Promise<AppendResult[]> {
    const results =
      items.length === 1
        ? [await this.entries.append(items[0]!.entry, items[0]!.source, this.clock())]
        : await this.entries.appendBatch(items, this.clock());
    recordBatchSize(this.stats, items.length);
    return results;
  }

  /**
   * Appends an entry audit-log made itself (a refusal by its API) to the chain, committed when
   * this resolves. It joins the writer's queue behind the consumer's batches (one chain writer
   * per process, ADR 0005 §1); it throws when the database refuses or is away.
   */
  async appendOwn(entry: AuditEntry): Promise<void> {
    const result = (await this.appendCounted([{ entry, source: OWN_SOURCE }]))[0]!;
    if (result.status === 'appended') this.stats.appended++;
  }

  /**
   * Processes deliveries in stream order: each entry they carry (one per single-entry message,
   * one per frame of a batch) becomes an entry, its own or an ingest refusal, in one append.
   * Resolves once every delivery may be acknowledged (committed); throws to have them all
   * redelivered. When the database refuses the append for good, each entry is retried on its own,
   * so only the event it refuses is recorded as a refusal. Outcomes are per entry, in order.
   */
  async handleBatch(msgs: readonly DurableMessage[]): Promise<IngestOutcome[]> {
    const items = msgs.flatMap((msg) => this.toItems(msg));
    if (items.length === 1) return [await this.handleItem(items[0]!)];
    let results;
    try {
      results = await this.appendCounted(items);
    } catch (err: unknown) {
      if (!isPermanent(err)) throw err; // all redelivered after the nak delay
      this.log.warn({ err, count: items.length }, 'batch refused; appending one at a time');
      const outcomes: IngestOutcome[] = [];
      for (const item of items) outcomes.push(await this.handleItem(item));
      return outcomes;
    }
    const outcomes: IngestOutcome[] = [];
    for (const [i, item] of items.entries()) outcomes.push(await this.settle(item, results[i]!));
    return outcomes;
  }

  /**
   * Processes one delivery; resolves once it may be acknowledged, throws to have it redelivered.
   * Outcomes are per entry it carries (one for a single-entry message).
   */
  async handle(msg: DurableMessage): Promise<IngestOutcome[]> {
    return this.handleBatch([msg]);
  }

  /** Appends one entry on its own; a permanent database refusal becomes its ingest refusal. */
  private async handleItem(item: IngestItem): Promise<IngestOutcome> {
    let result;
    try {
      result = (await this.appendCounted([item]))[0]!;
    } catch (err: unknown) {
      if (!isPermanent(err) || item.refused) throw err; // redelivered after ack wait / nak delay
      await this.refuse(item, `database refused the entry: ${(err as Error).message}`);
      return 'rejected';
    }
    return this.settle(item, result);
  }

  /**
   * The entries a delivery carries: a batch (subject `hcp.audit.batch`) one per frame, any other
   * subject one. Each is parsed and checked as a single event; one that does not validate becomes
   * its ingest refusal entry, and a batch that does not decode becomes one with all its bytes.
   */
  private toItems(msg: DurableMessage): IngestItem[] {
    if (msg.subject !== AUDIT_BATCH_SUBJECT)
      return [this.toItem(parseAuditEvent(msg.data, msg.headers), delivery(msg))];
    let batch: audit.AuditEventBatch;
    try {
      batch = audit.AuditEventBatch.decode(msg.data);
    } catch (err: unknown) {
      const reason = `undecodable AuditEventBatch: ${(err as Error).message}`;
      return [this.toItem({ ok: false, reason, known: {} }, delivery(msg))];
    }
    if (batch.frames.length === 0)
      return [
        this.toItem(
          { ok: false, reason: 'frames: at least one is required', known: {} },
          delivery(msg),
        ),
      ];
    return batch.frames.map((frame, i) =>
      this.toItem(parseAuditEvent(frame.event, frame.textEscaped ? ESCAPED : {}), {
        subject: msg.subject,
        streamSeq: msg.seq,
        data: frame.event,
        frame: i,
      }),
    );
  }

  /** The entry an event becomes: its own when it validates, else its ingest refusal entry. */
  private toItem(parsed: ParsedAuditEvent, where: RefusedDelivery): IngestItem {
    if (parsed.ok)
      return { entry: parsed.entry, source: parsed.source, refused: false, delivery: where };
    this.logRefusal(where, parsed.reason, parsed.known.id);
    return {
      entry: ingestRefusalEntry(parsed.reason, where, parsed.known, this.clock()),
      source: OWN_SOURCE,
      refused: true,
      delivery: where,
    };
  }

  /** Counts an append's result; a same-id event with different facts is recorded as a refusal. */
  private async settle(item: IngestItem, result: AppendResult): Promise<IngestOutcome> {
    if (result.status === 'appended') {
      if (item.refused) {
        this.stats.rejected++;
        return 'rejected';
      }
      this.stats.appended++;
      return 'appended';
    }
    if (!result.sameContent && !item.refused) {
      // Same id, different facts: the first stays in the chain; the second is kept as evidence.
      await this.refuse(
        item,
        `entry.id: already stored at seq ${result.seq} with different content`,
      );
      return 'rejected';
    }
    this.stats.duplicates++;
    this.log.debug({ entryId: item.entry.id, seq: result.seq }, 'duplicate audit event skipped');
    return 'duplicate';
  }

  /** Appends the ingest refusal entry of an event that decoded (its ids are known). */
  private async refuse(item: IngestItem, problem: string): Promise<void> {
    this.logRefusal(item.delivery, problem, item.entry.id);
    await this.appendCounted([
      {
        entry: ingestRefusalEntry(problem, item.delivery, item.entry, this.clock()),
        source: OWN_SOURCE,
      },
    ]);
    this.stats.rejected++;
  }

  private logRefusal(where: RefusedDelivery, reason: string, entryId: string | undefined): void {
    this.log.error(
      { streamSeq: where.streamSeq, subject: where.subject, frame: where.frame, entryId, reason },
      'audit event recorded as an ingest refusal',
    );
  }
}

/** One entry a delivery carries, as it will be appended, and where it came from. */
interface IngestItem {
  readonly entry: AuditEntry;
  readonly source: string;
  /** True when `entry` is the ingest refusal entry of an event that could not be one. */
  readonly refused: boolean;
  readonly delivery: RefusedDelivery;
}

/** A frame marked text_escaped reads as a single message with the escape header. */
const ESCAPED = { [AUDIT_TEXT_HEADER]: AUDIT_TEXT_ESCAPED };

function delivery(msg: DurableMessage): RefusedDelivery {
  return { subject: msg.subject, streamSeq: msg.seq, data: msg.data };
}
