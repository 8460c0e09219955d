import type { MigrationSet } from '@hcp/platform';
import * as initialSchema from './20261121120000-InitialSchema';
import * as pendingApprovalsIndex from './20261205120000-PendingApprovalsIndex';
import * as grantArgumentConstraints from './20261212120000-GrantArgumentConstraints';
import * as capabilityResourceArguments from './20261219120000-CapabilityResourceArguments';

/** grant-store's migrations in order; run with `migrateToLatest(db, grantStoreMigrations, 'grant_store')`. */
export const grantStoreMigrations: MigrationSet = {
  '20261121120000-InitialSchema': initialSchema,
  '20261205120000-PendingApprovalsIndex': pendingApprovalsIndex,
  '20261212120000-GrantArgumentConstraints': grantArgumentConstraints,
  '20261219120000-CapabilityResourceArguments': capabilityResourceArguments,
};

/** The migration table prefix grant-store uses, so services can share one database. */
export const GRANT_STORE_MIGRATION_TABLE = 'grant_store';
