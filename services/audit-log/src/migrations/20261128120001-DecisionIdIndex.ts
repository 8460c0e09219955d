import type { Kysely } from 'kysely';

/** `decision_id` filter of GET /v1/audit/entries: a denial's error carries the decision id. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('audit_entries_decision_id_seq_idx')
    .on('audit_entries')
    .columns(['decision_id', 'seq'])
    .execute();
}

/** Drops the index again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('audit_entries_decision_id_seq_idx').execute();
}
