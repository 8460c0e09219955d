import { sql } from 'kysely';
import type { AuditEntry, Capability } from '@hcp/core';
import { InProcessBus, type Database, type EventBus } from '@hcp/platform';
import {
  freshDatabase as freshKitDatabase,
  RecordingAudit,
  testClock as kitClock,
  TEST_POSTGRES_URL_VARIABLE as SHARED_TEST_POSTGRES_URL_VARIABLE,
  type TestClock,
} from '@hcp/platform/testing';
import { grants } from '@hcp/proto';
import { ApprovalRepository } from '../approval.repository';
import { ApprovalService } from '../approval.service';
import { CapabilityRepository } from '../capability.repository';
import { CapabilityService } from '../capability.service';
import type { GrantStoreDb } from '../database';
import { GrantRepository } from '../grant.repository';
import { GrantService } from '../grant.service';
import { GRANTS_CHANGED_SUBJECT, GrantsChangedPublisher } from '../grants-changed.publisher';
import { migrateGrantStore } from '../index';
import { RevisionRepository } from '../revision.repository';

/** 2026-11-21T12:00:00Z: a fixed start for the test clock. */
export const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);

export type { TestClock };

/** A clock starting at T0. */
export const testClock = (start = T0): TestClock => kitClock(start);

/**
 * A small manifest covering each resource kind, a provider wildcard target, an approval-gated tool
 * and a tool with two resource arguments (a source it removes, a destination it writes).
 */
export const MANIFEST: readonly Capability[] = [
  {
    id: 'fs/read_file',
    provider: 'fs',
    tool: 'read_file',
    effects: ['read'],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: [],
    resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
  },
  {
    id: 'fs/write_file',
    provider: 'fs',
    tool: 'write_file',
    effects: ['write'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: ['write'],
    resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'write' }],
  },
  {
    id: 'http/fetch',
    provider: 'http',
    tool: 'fetch',
    effects: ['network', 'read'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: [],
    resourceArguments: [{ name: 'url', canonicalizer: 'url', role: 'fetch' }],
  },
  {
    id: 'shell/exec',
    provider: 'shell',
    tool: 'exec',
    effects: ['execute'],
    risk: 'high',
    approvalRequired: true,
    requiredScopes: [],
    resourceArguments: [],
    definitionDigest: 'sha256:' + 'b'.repeat(64),
  },
  {
    id: 'fs/move_file',
    provider: 'fs',
    tool: 'move_file',
    effects: ['write', 'delete'],
    risk: 'medium',
    approvalRequired: false,
    requiredScopes: [],
    resourceArguments: [
      { name: 'source', canonicalizer: 'path', role: 'delete' },
      { name: 'destination', canonicalizer: 'path', role: 'write', scopes: ['write'] },
    ],
  },
];

/** grant-store's services wired by hand over PGlite and an in-process bus (no Nest, no gRPC). */
export interface ServiceHarness {
  readonly database: Database<GrantStoreDb>;
  readonly bus: EventBus;
  readonly clock: TestClock;
  readonly grants: GrantService;
  readonly capabilities: CapabilityService;
  readonly approvals: ApprovalService;
  /** Every hcp.grants.changed event seen, decoded, in arrival order. */
  readonly events: grants.GrantsChangedEvent[];
  /** Audit entries the services recorded (grant and approval changes). */
  readonly auditEntries: AuditEntry[];
  /** Lets in-process deliveries (microtasks) land. */
  settle(): Promise<void>;
  /** Empties every table and the event log (between tests). */
  reset(): Promise<void>;
  /** Puts MANIFEST and clears the events it produced. */
  seedManifest(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Set to a PostgreSQL URL (a role with CREATEDB) to run the service specs
 * against a real server instead of PGlite: each harness gets its own fresh
 * database, dropped on close. The same specs are the conformance suite for
 * both backends. The kit's shared variable (HCP_TEST_POSTGRES_URL) works too.
 */
export const TEST_POSTGRES_URL_VARIABLE = 'HCP_GRANT_STORE_TEST_POSTGRES_URL';

/** A fresh, migrated database: PGlite in memory, or a throwaway PostgreSQL database. */
export const freshDatabase = (): Promise<Database<GrantStoreDb>> =>
  freshKitDatabase<GrantStoreDb>({
    migrate: migrateGrantStore,
    postgresUrlVariables: [TEST_POSTGRES_URL_VARIABLE, SHARED_TEST_POSTGRES_URL_VARIABLE],
  });

/** Builds the services the way GrantStoreModule does, for service-level specs. */
export async function serviceHarness(options: { bus?: EventBus } = {}): Promise<ServiceHarness> {
  const database = await freshDatabase();
  const db = database.db;
  const bus = options.bus ?? new InProcessBus();
  const clock = testClock();
  const events: grants.GrantsChangedEvent[] = [];
  if (bus.isConnected())
    await bus.subscribe(GRANTS_CHANGED_SUBJECT, (m) => {
      events.push(grants.GrantsChangedEvent.decode(m.data));
    });
  const grantRepo = new GrantRepository(db);
  const capabilityRepo = new CapabilityRepository(db);
  const approvalRepo = new ApprovalRepository(db);
  const revisions = new RevisionRepository(db);
  const audit = new RecordingAudit();
  const auditEntries: AuditEntry[] = audit.entries;
  const publisher = new GrantsChangedPublisher(bus, audit);
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  const capabilities = new CapabilityService(db, capabilityRepo, revisions, publisher, clock);
  return {
    database,
    bus,
    clock,
    grants: new GrantService(db, grantRepo, capabilityRepo, revisions, publisher, clock),
    capabilities,
    approvals: new ApprovalService(db, approvalRepo, capabilityRepo, revisions, publisher, clock),
    events,
    auditEntries,
    settle,
    async reset() {
      await sql`truncate grants, capabilities, approvals, principal_revisions`.execute(db);
      await sql`update manifest_revision set revision = 0`.execute(db);
      clock.set(T0);
      await settle();
      events.length = 0;
      auditEntries.length = 0;
    },
    async seedManifest() {
      for (const c of MANIFEST) await capabilities.put(c);
      await settle();
      events.length = 0;
    },
    async close() {
      await bus.close();
      await database.close();
    },
  };
}
