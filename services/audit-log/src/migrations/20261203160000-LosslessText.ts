import { sql, type Kysely } from 'kysely';
import type { AuditEntry } from '@hcp/core';
import { appendEntries, INDEXED_PREFIX_CHARS } from '../audit-entry.repository';
import { parseAuditEvent } from '../audit-event.validation';
import { ingestRefusalEntry } from '../audit-refusal';
import type { AuditDb } from '../database';

// Imports the current ingest rules and chain code on purpose: a parked event is judged by the rules
// audit-log applies today, and linked into the chain the way verify recomputes it today.

/** Filter columns that take a caller's string, whose full value a btree cannot always index. */
const PREFIX_INDEXED = ['principal_id', 'capability_id', 'trace_id'] as const;

interface RejectRow {
  id: string | number;
  stream_seq: string | number;
  subject: string;
  payload: Uint8Array;
  received_at: Date;
}

/**
 * Makes every string storable and removes the dead-letter table:
 * - `text_escaped` marks rows stored escaped (stored-text.ts); existing rows are plain (false);
 * - the caller-controlled filter columns are indexed on their first INDEXED_PREFIX_CHARS
 *   characters, so a value of any length can be inserted (the repository filters on both);
 * - each parked event in `audit_rejects` moves into the chain, in the order it was parked: as the
 *   entry it carried when today's rules accept it (a NUL is storable now), else as an ingest
 *   refusal entry keeping its bytes; then the table is dropped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('audit_entries')
    .addColumn('text_escaped', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  for (const column of PREFIX_INDEXED) {
    await db.schema.dropIndex(`audit_entries_${column}_seq_idx`).ifExists().execute();
    await sql`create index ${sql.raw(`audit_entries_${column}_prefix_seq_idx`)}
      on audit_entries (left(${sql.ref(column)}, ${sql.lit(INDEXED_PREFIX_CHARS)}), seq)`.execute(
      db,
    );
  }

  const rejects = await sql<RejectRow>`
    select id, stream_seq, subject, payload, received_at from audit_rejects order by id`.execute(
    db,
  );
  const chain = db as unknown as Kysely<AuditDb>;
  const now = Date.now();
  for (const r of rejects.rows) {
    const delivery = {
      subject: r.subject,
      streamSeq: Number(r.stream_seq),
      data: new Uint8Array(r.payload),
    };
    const parsed = parseAuditEvent(delivery.data);
    const refusal = (problem: string, known: Partial<AuditEntry>) =>
      appendEntries(
        chain,
        [
          {
            entry: ingestRefusalEntry(problem, delivery, known, r.received_at.getTime()),
            source: 'audit-log',
          },
        ],
        now,
      );
    if (!parsed.ok) {
      await refusal(parsed.reason, parsed.known);
      continue;
    }
    const [result] = await appendEntries(chain, [parsed], now);
    if (result?.status === 'duplicate' && !result.sameContent)
      await refusal(
        `entry.id: already stored at seq ${result.seq} with different content`,
        parsed.entry,
      );
  }
  await db.schema.dropTable('audit_rejects').execute();
}

/** Development only: restores the empty dead-letter table and the plain indexes. */
export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of PREFIX_INDEXED) {
    await db.schema.dropIndex(`audit_entries_${column}_prefix_seq_idx`).ifExists().execute();
    await db.schema
      .createIndex(`audit_entries_${column}_seq_idx`)
      .on('audit_entries')
      .columns([column, 'seq'])
      .execute();
  }
  await db.schema.alterTable('audit_entries').dropColumn('text_escaped').execute();
  await db.schema
    .createTable('audit_rejects')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('stream_seq', 'bigint', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('entry_id', 'text')
    .addColumn('source', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('payload', 'bytea', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .execute();
}
