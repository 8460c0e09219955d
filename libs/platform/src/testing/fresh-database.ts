import type { Kysely } from 'kysely';
import { openDatabase, type Database } from '../db/database';
import { openScratchPostgres } from './integration';

/**
 * Set to a PostgreSQL URL (a role with CREATEDB) to run every store spec that uses freshDatabase
 * against a real server instead of PGlite, each in a throwaway database. The same specs are then
 * the conformance suite of both backends.
 */
export const TEST_POSTGRES_URL_VARIABLE = 'HCP_TEST_POSTGRES_URL';

/** How a store spec wants its database. */
export interface FreshDatabaseOptions<DB> {
  /** Brings the empty database to the store's schema (the service's own migrate function). */
  readonly migrate: (db: Kysely<DB>) => Promise<unknown>;
  /**
   * Environment variables naming the PostgreSQL server, first set one wins; default
   * TEST_POSTGRES_URL_VARIABLE. A service may list its own older name before the shared one.
   */
  readonly postgresUrlVariables?: readonly string[];
}

/** The PostgreSQL URL the environment names for store specs, or undefined for PGlite. */
export function testPostgresUrl(
  variables: readonly string[] = [TEST_POSTGRES_URL_VARIABLE],
): string | undefined {
  for (const name of variables) {
    const url = process.env[name];
    if (url !== undefined && url !== '') return url;
  }
  return undefined;
}

/**
 * A fresh, migrated database for one store test: PGlite in memory by default, or a throwaway
 * database on the PostgreSQL server the environment names (dropped on close). One helper, so the
 * services' harnesses cannot drift in how they create, migrate and drop it.
 */
export async function freshDatabase<DB>(options: FreshDatabaseOptions<DB>): Promise<Database<DB>> {
  const url = testPostgresUrl(options.postgresUrlVariables);
  const database =
    url === undefined
      ? await openDatabase<DB>({ kind: 'pglite' })
      : await openScratchPostgres<DB>(url);
  try {
    await options.migrate(database.db);
  } catch (err: unknown) {
    await database.close();
    throw err;
  }
  return database;
}
