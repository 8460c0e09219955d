import { PGlite } from '@electric-sql/pglite';
import { Kysely, Migrator, PostgresDialect, type Migration, type MigrationProvider } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import { Pool } from 'pg';
import { createLogger } from '../logging/logger';

/** Where a service's tables live: a PostgreSQL server, or PGlite in process (embedded mode). */
export type DatabaseConfig =
  | { readonly kind: 'postgres'; readonly url: string; readonly poolSize?: number }
  | { readonly kind: 'pglite'; readonly dataDir?: string };

/** An open database: the kysely handle and how to close it. */
export interface Database<DB> {
  readonly kind: DatabaseConfig['kind'];
  readonly db: Kysely<DB>;
  close(): Promise<void>;
}

const log = createLogger('Database');

/**
 * Opens kysely on PostgreSQL (`pg` pool) or PGlite. Both speak the same SQL, so
 * one set of migrations and repositories serves both run modes.
 */
export async function openDatabase<DB>(config: DatabaseConfig): Promise<Database<DB>> {
  if (config.kind === 'postgres') {
    const pool = new Pool({
      connectionString: config.url,
      max: config.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
    });
    pool.on('error', (err) => log.error({ err }, 'idle PostgreSQL client failed'));
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    return { kind: 'postgres', db, close: () => db.destroy() };
  }
  const pglite = config.dataDir !== undefined ? new PGlite(config.dataDir) : new PGlite();
  await pglite.waitReady;
  const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) });
  return {
    kind: 'pglite',
    db,
    close: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

/** Migrations of one service, keyed `<timestamp>-<PascalName>`; never edited after they land. */
export type MigrationSet = Readonly<Record<string, Migration>>;

/**
 * Runs a service's migrations to the latest, in its own migration table so
 * services can share one database. Throws with the failing migration's name.
 */
export async function migrateToLatest(
  db: Kysely<unknown>,
  migrations: MigrationSet,
  table: string,
): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: () => Promise.resolve({ ...migrations }) };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: `${table}_migrations`,
    migrationLockTableName: `${table}_migrations_lock`,
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed !== undefined) {
    throw new Error(
      `migration ${failed?.migrationName ?? '(unknown)'} of ${table} failed: ${String(error)}`,
    );
  }
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  if (applied.length > 0) log.info({ table, applied }, 'migrations applied');
  return applied;
}
