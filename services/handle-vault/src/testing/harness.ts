import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { HcpError, type AuditEntry } from '@hcp/core';
import { openDatabase, type Database } from '@hcp/platform';
import type { VaultDb } from '../database';
import type { VaultAuditPublisher } from '../handle-audit';
import { HandleRepository } from '../handle.repository';
import { HandleService } from '../handle.service';
import { migrateHandleVault } from '../index';
import { VaultKeyring } from '../keyring';
import { resolveLimits, type VaultLimits } from '../limits';

/** 2026-12-05T12:00:00Z: a fixed start for the test clock. */
export const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);

/** A clock tests move by hand. */
export interface TestClock {
  (): number;
  set(ms: number): void;
  advance(ms: number): void;
}

/** A clock starting at T0. */
export function testClock(start = T0): TestClock {
  let now = start;
  const clock = (() => now) as TestClock;
  clock.set = (ms) => (now = ms);
  clock.advance = (ms) => (now += ms);
  return clock;
}

/**
 * An in-memory AuditPublisher stand-in (record/available, Contract 1): keeps
 * every entry, and can be made "full" to test the vault's refusal (I7).
 */
export class RecordingAudit implements VaultAuditPublisher {
  readonly entries: AuditEntry[] = [];
  full = false;

  record(entry: AuditEntry): void {
    if (this.full) throw new HcpError('AUDIT_UNAVAILABLE', 'test audit buffer is full');
    this.entries.push(entry);
  }

  available(): boolean {
    return !this.full;
  }

  /** The entries recorded since the last call. */
  take(): AuditEntry[] {
    return this.entries.splice(0);
  }
}

/** Random key bytes per id, so tests can build keyrings over any subset and any active key. */
export function keyMaterial(...ids: string[]): Record<string, Buffer> {
  return Object.fromEntries(ids.map((id) => [id, randomBytes(32)]));
}

/**
 * Set to a PostgreSQL URL (a role with CREATEDB) to run the service and wire
 * specs against a real server instead of PGlite, each in a throwaway database.
 */
export const TEST_POSTGRES_URL_VARIABLE = 'HCP_VAULT_TEST_POSTGRES_URL';

/** A fresh, migrated database: PGlite in memory, or a throwaway PostgreSQL database. */
export async function freshDatabase(): Promise<Database<VaultDb>> {
  const url = process.env[TEST_POSTGRES_URL_VARIABLE];
  if (url === undefined || url === '') {
    const database = await openDatabase<VaultDb>({ kind: 'pglite' });
    await migrateHandleVault(database.db);
    return database;
  }
  const name = `handle_vault_test_${randomBytes(6).toString('hex')}`;
  const admin = await openDatabase<unknown>({ kind: 'postgres', url, poolSize: 1 });
  await sql`create database ${sql.id(name)}`.execute(admin.db);
  const target = new URL(url);
  target.pathname = `/${name}`;
  const database = await openDatabase<VaultDb>({ kind: 'postgres', url: target.toString() });
  await migrateHandleVault(database.db);
  return {
    ...database,
    async close() {
      await database.close();
      await sql`drop database if exists ${sql.id(name)}`.execute(admin.db);
      await admin.close();
    },
  };
}

/** The vault service wired by hand over a fresh database (no Nest, no gRPC). */
export interface ServiceHarness {
  readonly database: Database<VaultDb>;
  readonly clock: TestClock;
  readonly audit: RecordingAudit;
  readonly keys: Record<string, Buffer>;
  readonly service: HandleService;
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
  const build = (keyring: VaultKeyring, limits = options.limits) =>
    new HandleService(
      database.db,
      new HandleRepository(database.db),
      options.audit ?? audit,
      keyring,
      resolveLimits(limits),
      clock,
    );
  return {
    database,
    clock,
    audit,
    keys,
    service: build(VaultKeyring.of({ k1: keys['k1']! }, 'k1')),
    withKeys: build,
    async reset() {
      await sql`truncate handles`.execute(database.db);
      audit.entries.length = 0;
      audit.full = false;
      clock.set(T0);
    },
    close: () => database.close(),
  };
}
