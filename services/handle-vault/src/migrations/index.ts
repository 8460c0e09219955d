import type { MigrationSet } from '@hcp/platform';
import * as createHandles from './20261205120000-CreateHandles';
import * as putHandlesFunction from './20261220120000-PutHandlesFunction';

/** handle-vault's migrations in order; run with `migrateToLatest(db, vaultMigrations, 'handle_vault')`. */
export const vaultMigrations: MigrationSet = {
  '20261205120000-CreateHandles': createHandles,
  '20261220120000-PutHandlesFunction': putHandlesFunction,
};

/** The migration table prefix handle-vault uses, so services can share one database. */
export const VAULT_MIGRATION_TABLE = 'handle_vault';
