import type { MigrationSet } from '@hcp/platform';
import * as createHandles from './20261205120000-CreateHandles';

/** handle-vault's migrations in order; run with `migrateToLatest(db, vaultMigrations, 'handle_vault')`. */
export const vaultMigrations: MigrationSet = {
  '20261205120000-CreateHandles': createHandles,
};

/** The migration table prefix handle-vault uses, so services can share one database. */
export const VAULT_MIGRATION_TABLE = 'handle_vault';
