import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '@hcp/platform';
import {
  freshDatabase as freshKitDatabase,
  RecordingAudit,
  testClock as kitClock,
  TEST_POSTGRES_URL_VARIABLE as SHARED_TEST_POSTGRES_URL_VARIABLE,
  type TestClock,
} from '@hcp/platform/testing';
import type { VaultDb } from '../database';
import type { VaultAuditPublisher } from '../handle-audit';
import { HandleRepository } from '../handle.repository';
import { HandleService } from '../handle.service';
import { migrateHandleVault } from '../index';
import { VaultKeyring } from '../keyring';
import { resolveLimits, type VaultLimits } from '../limits';

/** 2026-12-05T12:00:00Z: a fixed start for the test clock. */
export const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);

export type { TestClock };

/** A clock starting at T0. */
export const testClock = (start = T0): TestClock => kitClock(start);

/** The kit's recording audit fake (record/available; `full` makes it refuse, I7). */
export { RecordingAudit };

/** Random key bytes per id, so tests can build keyrings over any subset and any active key. */
export function keyMaterial(...ids: string[]): Record<string, Buffer> {
  return Object.fromEntries(ids.map((id) => [id, randomBytes(32)]));
}

/**
 * Set to a PostgreSQL URL (a role with CREATEDB) to run the service and wire
 * specs against a real server instead of PGlite, each in a throwaway database. The kit's shared
 * variable (HCP_TEST_POSTGRES_URL) works too.
 */
export const TEST_POSTGRES_URL_VARIABLE = 'HCP_VAULT_TEST_POSTGRES_URL';

/** A fresh, migrated database: PGlite in memory, or a throwaway PostgreSQL database. */
export const freshDatabase = (): Promise<Database<VaultDb>> =>
  freshKitDatabase<VaultDb>({
    migrate: migrateHandleVault,
    postgresUrlVariables: [TEST_POSTGRES_URL_VARIABLE, SHARED_TEST_POSTGRES_URL_VARIABLE],
  });

/** The vault service wired by hand over a fresh database (no Nest, no gRPC). */
export interface ServiceHarness {
  readonly database: Database<VaultDb>;
  readonly clock: TestClock;
  readonly audit: RecordingAudit;
  readonly keys: Record<string, Buffer>;
  readonly service: HandleService;
  /** The repository `service` writes through (a spec may spy on its calls). */
  readonly repository: HandleRepository;
  /** Another service over the same database and audit, with a different keyring or limits. */
  withKeys(keyring: VaultKeyring, limits?: Partial<VaultLimits>): HandleService;
  /** Empties the table, the audit and resets the clock (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Builds the service the way HandleVaultModule does; keyring k1 (active) by default. */
export async function serviceHarness(
  options: { limits?: Partial<VaultLimits>; audit?: VaultAuditPublisher } = {},
): Promise<ServiceHarness> {
  const database = await freshDatabase();
  const clock = testClock();
  const audit = new RecordingAudit();
  const keys = keyMaterial('k1', 'k2');
  const repository = new HandleRepository(database.db);
  const build = (keyring: VaultKeyring, limits = options.limits, handles = repository) =>
    new HandleService(handles, options.audit ?? audit, keyring, resolveLimits(limits), clock);
  return {
    database,
    clock,
    audit,
    keys,
    service: build(VaultKeyring.of({ k1: keys['k1']! }, 'k1')),
    repository,
    withKeys: (keyring, limits) => build(keyring, limits, new HandleRepository(database.db)),
    async reset() {
      await sql`truncate handles`.execute(database.db);
      audit.reset();
      clock.set(T0);
    },
    close: () => database.close(),
  };
}
