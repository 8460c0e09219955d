import type { Kysely } from 'kysely';
import {
  ConfigError,
  migrateToLatest,
  openDatabase,
  startGrpcService,
  type Database,
  type DatabaseConfig,
} from '@hcp/platform';
import { vault } from '@hcp/proto';
import type { VaultDb } from './database';
import type { VaultAuditPublisher } from './handle-audit';
import { HandleRepository } from './handle.repository';
import { HandleService } from './handle.service';
import { HandleVaultModule } from './handle-vault.module';
import type { Clock } from './handle-vault.tokens';
import { KEYS_VARIABLE, type VaultKeyring } from './keyring';
import { resolveLimits, type VaultLimits } from './limits';
import { VAULT_MIGRATION_TABLE, vaultMigrations } from './migrations';

export type { VaultDb, HandlesTable } from './database';
export {
  HandleVaultModule,
  type HandleVaultModuleOptions,
  DEFAULT_SWEEP_INTERVAL_MS,
} from './handle-vault.module';
export { vaultMigrations, VAULT_MIGRATION_TABLE } from './migrations';
export { VaultKeyring, KEYS_VARIABLE, ACTIVE_KEY_VARIABLE, KEY_BYTES } from './keyring';
export { DEFAULT_LIMITS, MAX_WIRE_PAYLOAD_BYTES, resolveLimits, type VaultLimits } from './limits';
export { OPERATOR_METADATA_KEY } from './handle-vault.controller';
export type { VaultAuditPublisher, DenialRule, VaultOperation } from './handle-audit';
export { REDACTED, renderPreview, redactText, type Preview } from './redaction';
export { FIELD_LIMITS as VAULT_FIELD_LIMITS } from './handle-vault.validation';
export { HandleService } from './handle.service';
export type { Clock } from './handle-vault.tokens';

/** The generated gRPC services handle-vault serves, by full proto name. */
export const HANDLE_VAULT_SERVICES = {
  'hcp.vault.v1.HandleVault': vault.HandleVaultService,
} as const;

/** How to start handle-vault in process: embedded composition root, tests, and main.ts. */
export interface StartHandleVaultOptions {
  /** A config to open (and close on `close()`), or an open database the caller owns. */
  readonly db: DatabaseConfig | Database<VaultDb>;
  /** Where every peek, pipe, delete and expiry is recorded; stays the caller's (not closed here). */
  readonly audit: VaultAuditPublisher;
  readonly keys: VaultKeyring;
  /** 0 picks a free port. */
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Epoch millis; default Date.now. */
  readonly clock?: Clock;
  /** Overrides of DEFAULT_LIMITS; checked at start (ConfigError). */
  readonly limits?: Partial<VaultLimits>;
  /** Sweeper period in millis; 0 disables it. Default 60 s. */
  readonly sweepIntervalMs?: number;
  /** Graceful shutdown bound passed to startGrpcService. */
  readonly drainTimeoutMs?: number;
}

/** A running handle-vault. */
export interface RunningHandleVault {
  readonly port: number;
  /** `host:port` for createGrpcClient(vault.HandleVaultClient, url). */
  readonly url: string;
  /** Drains in-flight calls, stops the sweeper and the server, closes the database if it opened it. */
  close(): Promise<void>;
  /** Re-seals live rows not under the active key; how many it re-sealed (see HandleService.rotateKeys). */
  rotateKeys(): Promise<number>;
  /** Purges rows expired longer than the retention now, without waiting for the sweeper. */
  sweepExpired(): Promise<number>;
}

/** Migrates, checks the keyring against the stored rows, and serves handle-vault over gRPC. */
export async function startHandleVault(
  options: StartHandleVaultOptions,
): Promise<RunningHandleVault> {
  const limits = resolveLimits(options.limits);
  const given = options.db;
  const owned = !isOpenDatabase(given);
  const database = isOpenDatabase(given) ? given : await openDatabase<VaultDb>(given);
  try {
    await migrateHandleVault(database.db);
    await assertKeyringCoversLiveRows(database.db, options.keys, (options.clock ?? Date.now)());
    const running = await startGrpcService({
      name: 'handle-vault',
      module: HandleVaultModule.forRoot({
        db: database.db,
        audit: options.audit,
        keys: options.keys,
        limits,
        ...(options.clock !== undefined && { clock: options.clock }),
        ...(options.sweepIntervalMs !== undefined && { sweepIntervalMs: options.sweepIntervalMs }),
      }),
      services: HANDLE_VAULT_SERVICES,
      ...(options.host !== undefined && { host: options.host }),
      port: options.port,
      ...(options.drainTimeoutMs !== undefined && { drainTimeoutMs: options.drainTimeoutMs }),
    });
    const service = running.app.get(HandleService);
    let closing: Promise<void> | undefined;
    return {
      port: running.port,
      url: running.url,
      rotateKeys: () => service.rotateKeys(),
      sweepExpired: () => service.sweepExpired(),
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

function isOpenDatabase(db: DatabaseConfig | Database<VaultDb>): db is Database<VaultDb> {
  return 'db' in db;
}

/** Runs handle-vault's migrations to the latest (idempotent). */
export async function migrateHandleVault(db: Kysely<VaultDb>): Promise<string[]> {
  return migrateToLatest(db as unknown as Kysely<unknown>, vaultMigrations, VAULT_MIGRATION_TABLE);
}

/**
 * Every live row must be sealed under a key the keyring holds: removing a key
 * before rotateKeys re-sealed its rows fails the start, naming HCP_VAULT_KEYS,
 * instead of turning reads of those handles into errors later.
 */
export async function assertKeyringCoversLiveRows(
  db: Kysely<VaultDb>,
  keys: VaultKeyring,
  now: number,
): Promise<void> {
  const missing = (await new HandleRepository(db).liveKeyIds(now)).filter((id) => !keys.has(id));
  if (missing.length > 0)
    throw new ConfigError([
      {
        variable: KEYS_VARIABLE,
        message: `live handles are sealed under key id(s) ${missing.join(', ')}, which the keyring lacks; keep a key until rotateKeys has re-sealed its rows`,
      },
    ]);
}
