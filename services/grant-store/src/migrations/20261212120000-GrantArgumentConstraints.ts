import { sql, type Kysely } from 'kysely';

/**
 * Grants gain argument constraints (rules on a call's top-level arguments, see
 * docs/policy.md). Existing grants get an empty list: they stay exactly as wide as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('grants')
    .addColumn('argument_constraints', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
}

/** Drops the column (development only). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').dropColumn('argument_constraints').execute();
}
