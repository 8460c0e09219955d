import { sql, type Kysely } from 'kysely';

// Runs unchanged on PostgreSQL and PGlite. Append-only is enforced by a trigger rather than by
// REVOKE: PGlite has a single superuser, so privileges cannot be withheld there (README).

/** The hash of "no previous entry": 64 zeros. */
const GENESIS = '0'.repeat(64);

/** Creates the chain, its head, the dead-letter table, and the append-only triggers. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_entries')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('time', 'timestamptz', (c) => c.notNull())
    .addColumn('decision_id', 'text', (c) => c.notNull())
    .addColumn('principal_id', 'text')
    .addColumn('endpoint_family', 'text', (c) => c.notNull())
    .addColumn('capability_id', 'text')
    .addColumn('resource_raw', 'text')
    .addColumn('resource_canonical', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('invariant', 'text')
    .addColumn('check_name', 'text')
    .addColumn('matched_grant_id', 'text')
    .addColumn('missing_grant', 'text')
    .addColumn('rule', 'text')
    .addColumn('approval_id', 'text')
    .addColumn('handle_ids', 'jsonb', (c) => c.notNull())
    .addColumn('trace_id', 'text')
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('ingested_at', 'timestamptz', (c) => c.notNull())
    .addCheckConstraint('audit_entries_seq_positive', sql`seq > 0`)
    .addCheckConstraint('audit_entries_outcome_check', sql`outcome in ('allow', 'deny')`)
    .addCheckConstraint('audit_entries_hash_hex', sql`hash ~ '^[0-9a-f]{64}$'`)
    .addCheckConstraint('audit_entries_prev_hash_hex', sql`prev_hash ~ '^[0-9a-f]{64}$'`)
    .execute();
  // The query API's filters each walk one of these in seq order (cursor pagination).
  for (const column of ['principal_id', 'capability_id', 'trace_id', 'reason']) {
    await db.schema
      .createIndex(`audit_entries_${column}_seq_idx`)
      .on('audit_entries')
      .columns([column, 'seq'])
      .execute();
  }
  await db.schema
    .createIndex('audit_entries_time_idx')
    .on('audit_entries')
    .column('time')
    .execute();

  await db.schema
    .createTable('audit_chain_head')
    .addColumn('id', 'smallint', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addCheckConstraint('audit_chain_head_single_row', sql`id = 1`)
    .execute();
  await sql`insert into audit_chain_head (id, seq, hash) values (1, 0, ${GENESIS})`.execute(db);

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

  await sql`
    create function audit_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception '% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  for (const table of ['audit_entries', 'audit_rejects']) {
    await sql`
      create trigger ${sql.raw(`${table}_append_only`)}
      before update or delete on ${sql.table(table)}
      for each row execute function audit_refuse_change()`.execute(db);
    await sql`
      create trigger ${sql.raw(`${table}_no_truncate`)}
      before truncate on ${sql.table(table)}
      for each statement execute function audit_refuse_change()`.execute(db);
  }
}

/** Drops everything `up` created (development only; never run against a real audit). */
export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['audit_rejects', 'audit_chain_head', 'audit_entries'])
    await db.schema.dropTable(table).ifExists().execute();
  await sql`drop function if exists audit_refuse_change()`.execute(db);
}
