// Reads what is in the HCP_AUDIT stream, independently of audit-log: a durable consumer of its
// own, so a suite can compare the stream with the chain audit-log wrote. Decodes both message
// forms (ADR 0005 §1): a single AuditEvent on `hcp.audit.<kind>` and an AuditEventBatch on
// `hcp.audit.batch`, whose frames each carry an encoded AuditEvent.
import { randomBytes } from 'node:crypto';
import { AUDIT_STREAM, ensureAuditStream, type EventBus, type Subscription } from '@hcp/platform';
import { audit } from '@hcp/proto';

/** The subject an AuditEventBatch travels on. */
export const AUDIT_BATCH_SUBJECT = 'hcp.audit.batch';

/** One message as it is stored in the stream. */
export interface AuditStreamMessage {
  readonly seq: number;
  readonly subject: string;
  /** The entry ids it carries, in order (one for a single event, each frame's for a batch). */
  readonly entryIds: readonly string[];
  /** Set when the payload did not decode (audit-log records such a message as an ingest refusal). */
  readonly undecodable?: string;
}

/** A reader that keeps every message of the stream it has seen, in stream order. */
export interface AuditStreamReader {
  readonly durable: string;
  /** Messages seen so far, in stream order. */
  messages(): readonly AuditStreamMessage[];
  /** Resolves once a message carrying this entry id has been read, with that message. */
  waitForEntry(entryId: string, timeoutMs: number): Promise<AuditStreamMessage>;
  /** Stops reading. The durable stays on the server (EventBus cannot delete one); it is unique. */
  close(): Promise<void>;
}

/** The entry ids one stored message carries; throws when it does not decode. */
export function entryIdsOf(subject: string, data: Uint8Array): string[] {
  const idOf = (event: Uint8Array): string => {
    const id = audit.AuditEvent.decode(event).entry?.id;
    if (id === undefined || id === '') throw new Error('an AuditEvent without an entry id');
    return id;
  };
  if (subject === AUDIT_BATCH_SUBJECT)
    return audit.AuditEventBatch.decode(data).frames.map((f) => idOf(f.event));
  return [idOf(data)];
}

/**
 * Starts reading HCP_AUDIT from its first message with a durable consumer of its own (unique
 * name), acknowledging each message once it is recorded here.
 */
export async function readAuditStream(bus: EventBus): Promise<AuditStreamReader> {
  await ensureAuditStream(bus);
  const durable = `audit-stream-reader-${randomBytes(6).toString('hex')}`;
  const seen: AuditStreamMessage[] = [];
  const waiters = new Map<string, (m: AuditStreamMessage) => void>();
  const sub: Subscription = await bus.consumeDurableBatch(
    { stream: AUDIT_STREAM, durable, maxBatch: 256, ackWaitMs: 30_000 },
    (msgs) => {
      for (const msg of msgs) {
        let message: AuditStreamMessage;
        try {
          message = {
            seq: msg.seq,
            subject: msg.subject,
            entryIds: entryIdsOf(msg.subject, msg.data),
          };
        } catch (err: unknown) {
          message = {
            seq: msg.seq,
            subject: msg.subject,
            entryIds: [],
            undecodable: err instanceof Error ? err.message : String(err),
          };
        }
        // A redelivery (ack lost) is the same stored message: keep it once.
        const last = seen[seen.length - 1];
        if (last !== undefined && msg.seq <= last.seq) continue;
        seen.push(message);
        for (const id of message.entryIds) {
          const w = waiters.get(id);
          if (w !== undefined) {
            waiters.delete(id);
            w(message);
          }
        }
      }
      return Promise.resolve();
    },
  );
  return {
    durable,
    messages: () => seen,
    waitForEntry: (entryId, timeoutMs) => {
      const found = seen.find((m) => m.entryIds.includes(entryId));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(entryId);
          reject(new Error(`entry ${entryId} not read from ${AUDIT_STREAM} in ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.set(entryId, (m) => {
          clearTimeout(timer);
          resolve(m);
        });
      });
    },
    close: () => sub.unsubscribe(),
  };
}
