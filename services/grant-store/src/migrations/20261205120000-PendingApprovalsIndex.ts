import { sql, type Kysely } from 'kysely';

/**
 * ListApprovals walks pending approvals in id order. Decided rows pile up forever while
 * pending ones stay few, so a partial index keeps that walk proportional to what waits.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('approvals_pending_id_idx')
    .on('approvals')
    .column('id')
    .where(sql.ref('state'), '=', 'pending')
    .execute();
}

/** Drops the index (development only). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('approvals_pending_id_idx').ifExists().execute();
}
