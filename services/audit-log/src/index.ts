export {
  startAuditLog,
  migrateAuditLog,
  AUDIT_LOG_SERVICES,
  type StartAuditLogOptions,
  type RunningAuditLog,
} from './audit-log';
export type { AuditDb } from './database';
export { auditLogMigrations, AUDIT_LOG_MIGRATION_TABLE } from './migrations';
export { GENESIS_HASH, entryHash, hashedForm, type BrokenLink, type BreakReason } from './chain';
export { AUDIT_DURABLE, BATCH_SIZE_BOUNDS, type IngestStats } from './audit-ingest.service';
export {
  AuditQueryService,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type VerifyResult,
  type EntriesPage,
} from './audit-query.service';
export type { AuditFilter, StoredAuditEntry } from './audit-entry.repository';
export { ENTRIES_QUERY_PARAMS, VERIFY_QUERY_PARAMS } from './query-params';
export { EntryNotFoundError, OperatorRequiredError } from './errors';
