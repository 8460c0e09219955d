import { sql, type Kysely } from 'kysely';

/**
 * A capability declares every resource argument, each with its role (see docs/policy.md):
 * `resource_arguments` (a JSON list) replaces `resource_argument`. An existing argument becomes
 * a one-element list whose role follows the capability's declared effects: `write` when it
 * writes, `fetch` when it talks to the network, else `read`. A capability without one gets `[]`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('capabilities')
    .addColumn('resource_arguments', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await sql`
    update capabilities set resource_arguments = jsonb_build_array(jsonb_build_object(
      'name', resource_argument->'name',
      'canonicalizer', resource_argument->'canonicalizer',
      'role', case
        when effects @> '["write"]'::jsonb then 'write'
        when effects @> '["network"]'::jsonb then 'fetch'
        else 'read'
      end))
    where resource_argument is not null`.execute(db);
  await db.schema.alterTable('capabilities').dropColumn('resource_argument').execute();
}

/** Restores the single column from each list's first argument (development only). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('capabilities').addColumn('resource_argument', 'jsonb').execute();
  await sql`
    update capabilities set resource_argument = jsonb_build_object(
      'name', resource_arguments->0->'name',
      'canonicalizer', resource_arguments->0->'canonicalizer')
    where jsonb_array_length(resource_arguments) > 0`.execute(db);
  await db.schema.alterTable('capabilities').dropColumn('resource_arguments').execute();
}
