import type { Kysely } from 'kysely';
import {
  createLogger,
  createTokenVerifier,
  migrateToLatest,
  openDatabase,
  startGrpcService,
  type Database,
  type DatabaseConfig,
  type AuditPublisher,
  type EventBus,
  type TokenVerifier,
  type TokenVerifierOptions,
} from '@hcp/platform';
import { grants } from '@hcp/proto';
import type { GrantStoreDb } from './database';
import { GrantStoreModule } from './grant-store.module';
import type { ApprovalLifetimes, Clock } from './grant-store.tokens';
import { GRANT_STORE_MIGRATION_TABLE, grantStoreMigrations } from './migrations';

export type { GrantStoreDb } from './database';
export { GrantStoreModule, type GrantStoreModuleOptions } from './grant-store.module';
export { grantStoreMigrations, GRANT_STORE_MIGRATION_TABLE } from './migrations';
export { GRANTS_CHANGED_SUBJECT, encodeGrantsChanged } from './grants-changed.publisher';
export {
  APPROVER_KINDS,
  AUTHORIZATION_METADATA_KEY,
  OPERATOR_METADATA_KEY,
  approverOf,
  type ApproverAuthentication,
} from './approver';
export { NotFoundError, FailedPreconditionError, ApproverRequiredError } from './errors';
export {
  DEFAULT_APPROVAL_LIFETIMES,
  DEFAULT_APPROVAL_TTL_MS,
  MAX_APPROVAL_TTL_MS,
  DEFAULT_APPROVAL_PAGE_SIZE,
  MAX_APPROVAL_PAGE_SIZE,
} from './approval.service';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './grant.service';
export { LIMITS as GRANT_STORE_LIMITS } from './grant-store.validation';
export type { ApprovalLifetimes } from './grant-store.tokens';

/** The generated gRPC services grant-store serves, by full proto name. */
export const GRANT_STORE_SERVICES = {
  'hcp.grants.v1.GrantStore': grants.GrantStoreService,
} as const;

/** How to start grant-store in process: embedded composition root, tests, and main.ts. */
export interface StartGrantStoreOptions {
  /** A config to open (and close on `close()`), or an open database the caller owns. */
  readonly db: DatabaseConfig | Database<GrantStoreDb>;
  readonly bus: EventBus;
  /** 0 picks a free port. */
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Epoch millis; default Date.now. */
  readonly clock?: Clock;
  /** Records grant and approval changes (I7). */
  readonly audit?: AuditPublisher;
  /** Graceful shutdown bound passed to startGrpcService. */
  readonly drainTimeoutMs?: number;
  /**
   * Verifies the operator bearer token DecideApproval and ListApprovals need (a verifier, or
   * the options to create one, as audit-log takes). Absent: DEVELOPMENT ONLY, the operator id
   * is trusted from metadata `hcp-principal-id`; logged as a warning at start.
   */
  readonly verifier?: TokenVerifier | TokenVerifierOptions;
  /** How long approvals stay usable; default DEFAULT_APPROVAL_LIFETIMES. */
  readonly approvalLifetimes?: ApprovalLifetimes;
}

/** A running grant-store. */
export interface RunningGrantStore {
  readonly port: number;
  /** `host:port` for createGrpcClient(grants.GrantStoreClient, url). */
  readonly url: string;
  /** Drains in-flight calls, stops the server, and closes the database if it opened it. The bus stays the caller's. */
  close(): Promise<void>;
}

const log = createLogger('GrantStore');

function isVerifier(v: TokenVerifier | TokenVerifierOptions): v is TokenVerifier {
  return typeof (v as Partial<TokenVerifier>).verify === 'function';
}

/** Migrates the database and serves grant-store over gRPC; one code path for both run modes. */
export async function startGrantStore(options: StartGrantStoreOptions): Promise<RunningGrantStore> {
  // Built before anything opens, so a misconfigured verifier fails at boot with nothing to clean up.
  const verifier =
    options.verifier === undefined
      ? undefined
      : isVerifier(options.verifier)
        ? options.verifier
        : createTokenVerifier(options.verifier);
  if (verifier === undefined)
    log.warn(
      'no token verifier: DecideApproval trusts metadata hcp-principal-id from any caller (development only)',
    );
  const given = options.db;
  const owned = !isOpenDatabase(given);
  const database = isOpenDatabase(given) ? given : await openDatabase<GrantStoreDb>(given);
  try {
    await migrateGrantStore(database.db);
    const running = await startGrpcService({
      name: 'grant-store',
      module: GrantStoreModule.forRoot({
        db: database.db,
        bus: options.bus,
        ...(options.clock !== undefined && { clock: options.clock }),
        ...(options.audit !== undefined && { audit: options.audit }),
        ...(verifier !== undefined && { verifier }),
        ...(options.approvalLifetimes !== undefined && {
          approvalLifetimes: options.approvalLifetimes,
        }),
      }),
      services: GRANT_STORE_SERVICES,
      ...(options.host !== undefined && { host: options.host }),
      port: options.port,
      ...(options.drainTimeoutMs !== undefined && { drainTimeoutMs: options.drainTimeoutMs }),
    });
    let closing: Promise<void> | undefined;
    return {
      port: running.port,
      url: running.url,
      close: () =>
        (closing ??= (async () => {
          try {
            await running.close();
          } finally {
            if (owned) await database.close();
          }
        })()),
    };
  } catch (err: unknown) {
    if (owned) await database.close();
    throw err;
  }
}

function isOpenDatabase(db: DatabaseConfig | Database<GrantStoreDb>): db is Database<GrantStoreDb> {
  return 'db' in db;
}

/** Runs grant-store's migrations to the latest (idempotent). */
export async function migrateGrantStore(db: Kysely<GrantStoreDb>): Promise<string[]> {
  return migrateToLatest(
    db as unknown as Kysely<unknown>,
    grantStoreMigrations,
    GRANT_STORE_MIGRATION_TABLE,
  );
}
