import type { MigrationSet } from '@hcp/platform';
import * as decisionIdIndex from './20261128120001-DecisionIdIndex';
import * as initialSchema from './20261128120000-InitialSchema';
import * as losslessText from './20261203160000-LosslessText';

/** audit-log's migrations in order; run with `migrateToLatest(db, auditLogMigrations, 'audit_log')`. */
export const auditLogMigrations: MigrationSet = {
  '20261128120000-InitialSchema': initialSchema,
  '20261128120001-DecisionIdIndex': decisionIdIndex,
  '20261203160000-LosslessText': losslessText,
};

/** The migration table prefix audit-log uses, so services can share one database. */
export const AUDIT_LOG_MIGRATION_TABLE = 'audit_log';
