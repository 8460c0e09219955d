import { sql, type Kysely } from 'kysely';

// Timestamps are timestamptz (see Timestamptz in ../database.ts for why); revisions are bigint
// to match the proto's int64. Everything here runs unchanged on PostgreSQL and PGlite.

/** Creates grants, the capability manifest, approvals and the revision counters. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('grants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('capabilities', 'jsonb', (c) => c.notNull())
    .addColumn('resource_patterns', 'jsonb', (c) => c.notNull())
    .addColumn('scopes', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoke_reason', 'text')
    .addColumn('revision', 'bigint', (c) => c.notNull())
    .execute();
  // GetPrincipalGrants and ListGrants both filter by principal and walk ids in order.
  await db.schema
    .createIndex('grants_principal_id_id_idx')
    .on('grants')
    .columns(['principal_id', 'id'])
    .execute();

  await db.schema
    .createTable('capabilities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('tool', 'text', (c) => c.notNull())
    .addColumn('effects', 'jsonb', (c) => c.notNull())
    .addColumn('risk', 'text', (c) => c.notNull())
    .addColumn('approval_required', 'boolean', (c) => c.notNull())
    .addColumn('required_scopes', 'jsonb', (c) => c.notNull())
    .addColumn('resource_argument', 'jsonb')
    .addColumn('definition_digest', 'text')
    .addColumn('revision', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addCheckConstraint('capabilities_risk_check', sql`risk in ('low', 'medium', 'high')`)
    .addCheckConstraint('capabilities_id_check', sql`id = provider || '/' || tool`)
    .execute();
  await db.schema
    .createIndex('capabilities_provider_idx')
    .on('capabilities')
    .column('provider')
    .execute();

  await db.schema
    .createTable('approvals')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('capability_id', 'text', (c) => c.notNull())
    .addColumn('binding_digest', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('decided_at', 'timestamptz')
    .addColumn('decided_by', 'text')
    .addColumn('consumed_at', 'timestamptz')
    .addCheckConstraint('approvals_state_check', sql`state in ('pending', 'approved', 'denied')`)
    // Single use is also a schema fact: only an approved approval can carry consumed_at.
    .addCheckConstraint('approvals_consumed_check', sql`consumed_at is null or state = 'approved'`)
    .execute();
  await db.schema
    .createIndex('approvals_principal_id_idx')
    .on('approvals')
    .column('principal_id')
    .execute();

  await db.schema
    .createTable('principal_revisions')
    .addColumn('principal_id', 'text', (c) => c.primaryKey())
    .addColumn('revision', 'bigint', (c) => c.notNull())
    .addCheckConstraint('principal_revisions_positive', sql`revision > 0`)
    .execute();

  await db.schema
    .createTable('manifest_revision')
    .addColumn('id', 'smallint', (c) => c.primaryKey())
    .addColumn('revision', 'bigint', (c) => c.notNull())
    .addCheckConstraint('manifest_revision_single_row', sql`id = 1`)
    .execute();
  await sql`insert into manifest_revision (id, revision) values (1, 0)`.execute(db);
}

/** Drops everything `up` created (for a clean re-run in development; never run in production). */
export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'manifest_revision',
    'principal_revisions',
    'approvals',
    'capabilities',
    'grants',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
