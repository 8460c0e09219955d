import type { Kysely } from 'kysely';
import { toNumber, type AuditDb } from './database';

/** An event that could not become an entry, kept with its bytes so an operator can inspect or replay it. */
export interface AuditReject {
  readonly streamSeq: number;
  readonly subject: string;
  readonly entryId?: string;
  readonly source?: string;
  readonly reason: string;
  readonly payload: Uint8Array;
  readonly receivedAt: number;
}

/** The dead-letter table: append and list, nothing else. */
export class AuditRejectRepository {
  constructor(private readonly db: Kysely<AuditDb>) {}

  async insert(r: AuditReject): Promise<void> {
    await this.db
      .insertInto('audit_rejects')
      .values({
        stream_seq: r.streamSeq,
        subject: r.subject,
        entry_id: r.entryId ?? null,
        source: r.source ?? null,
        reason: r.reason,
        payload: r.payload,
        received_at: new Date(r.receivedAt),
      })
      .execute();
  }

  /** Every reject in arrival order (operators and tests; the table stays small). */
  async list(limit = 1000): Promise<AuditReject[]> {
    const rows = await this.db
      .selectFrom('audit_rejects')
      .selectAll()
      .orderBy('id', 'asc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      streamSeq: toNumber(r.stream_seq),
      subject: r.subject,
      ...(r.entry_id !== null ? { entryId: r.entry_id } : {}),
      ...(r.source !== null ? { source: r.source } : {}),
      reason: r.reason,
      payload: r.payload,
      receivedAt: r.received_at.getTime(),
    }));
  }
}
