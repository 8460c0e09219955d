import { sql, type Kysely } from 'kysely';

// Runs unchanged on PostgreSQL and PGlite. Lengths of IV and tag are schema facts
// (AES-GCM 96-bit IV, 128-bit tag) so a truncated value is refused at write time.

/** Creates the handles table and the indexes the quota sum, the sweeper and rotation use. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('handles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_principal_id', 'text', (c) => c.notNull())
    .addColumn('producing_capability', 'text', (c) => c.notNull())
    .addColumn('labels', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('iv', 'bytea', (c) => c.notNull())
    .addColumn('ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('auth_tag', 'bytea', (c) => c.notNull())
    .addCheckConstraint('handles_size_check', sql`size_bytes >= 0`)
    .addCheckConstraint('handles_iv_check', sql`octet_length(iv) = 12`)
    .addCheckConstraint('handles_auth_tag_check', sql`octet_length(auth_tag) = 16`)
    .addCheckConstraint('handles_expiry_check', sql`expires_at >= created_at`)
    .execute();
  // Put sums one principal's live handles under its lock.
  await db.schema
    .createIndex('handles_owner_expires_idx')
    .on('handles')
    .columns(['owner_principal_id', 'expires_at'])
    .execute();
  // The sweeper deletes by expiry.
  await db.schema.createIndex('handles_expires_idx').on('handles').column('expires_at').execute();
  // rotateKeys and the boot check look rows up by key.
  await db.schema.createIndex('handles_key_id_idx').on('handles').column('key_id').execute();
}

/** Drops everything `up` created (development only). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('handles').ifExists().execute();
}
