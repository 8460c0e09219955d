import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  callUnary,
  createGrpcClient,
  InProcessBus,
  openDatabase,
  reasonOfGrpcError,
  type Database,
} from '@hcp/platform';
import { audit, auditEntryFromProto, core, toTimestamp } from '@hcp/proto';
import { startAuditLog, type RunningAuditLog } from './audit-log';
import type { AuditDb } from './database';
import {
  AGENT,
  bearerFor,
  OPERATOR,
  publishEntries,
  T0,
  tamperWithEntry,
  TEST_AUTH,
  testEntry,
  until,
} from './testing';

const ENTRIES = Array.from({ length: 12 }, (_, k) =>
  testEntry(k + 1, k % 3 === 0 ? { outcome: 'deny', reason: 'SCOPE_MISSING' } : {}),
);

describe('audit-log gRPC AuditLog', () => {
  let database: Database<AuditDb>;
  let bus: InProcessBus;
  let service: RunningAuditLog;
  let client: audit.AuditLogClient;
  let asOperator: Metadata;
  let asAgent: Metadata;

  beforeAll(async () => {
    database = await openDatabase<AuditDb>({ kind: 'pglite' });
    bus = new InProcessBus();
    service = await startAuditLog({
      db: database,
      bus,
      httpPort: 0,
      grpcPort: 0,
      verifier: TEST_AUTH,
    });
    client = createGrpcClient(audit.AuditLogClient, service.grpcUrl!);
    await publishEntries(bus, ENTRIES);
    await until(() => service.stats.appended === ENTRIES.length, 'entries');
    asOperator = new Metadata();
    asOperator.set('authorization', await bearerFor(OPERATOR));
    asAgent = new Metadata();
    asAgent.set('authorization', await bearerFor(AGENT));
  });
  afterAll(async () => {
    client.close();
    await service.close();
    await bus.close();
    await database.close();
  });

  const query = (req: Partial<audit.QueryEntriesRequest>, metadata = asOperator) =>
    callUnary(client.queryEntries.bind(client), audit.QueryEntriesRequest.fromPartial(req), {
      metadata,
    });

  it('pages through filtered entries in chain order', async () => {
    const denies = ENTRIES.filter((e) => e.outcome === 'deny').map((e) => e.id);
    const first = await query({ outcome: core.Outcome.OUTCOME_DENY, pageSize: 3 });
    expect(first.entries.map((e) => e.id)).toEqual(denies.slice(0, 3));
    const second = await query({
      outcome: core.Outcome.OUTCOME_DENY,
      pageSize: 3,
      pageToken: first.nextPageToken,
    });
    expect(second.entries.map((e) => e.id)).toEqual(denies.slice(3));
    expect(second.nextPageToken).toBe('');
    const ranged = await query({
      startTime: toTimestamp(T0 + 2000),
      endTime: toTimestamp(T0 + 5000),
    });
    expect(ranged.entries.map((e) => e.id)).toEqual(ENTRIES.slice(1, 4).map((e) => e.id));
    expect(auditEntryFromProto(ranged.entries[0]!)).toMatchObject({ ...ENTRIES[1], seq: 2 });
  });

  it('gets one entry, NOT_FOUND for an unknown id, INVALID_ARGUMENT for a bad token', async () => {
    const res = await callUnary(
      client.getEntry.bind(client),
      { entryId: ENTRIES[5]!.id },
      {
        metadata: asOperator,
      },
    );
    expect(res.entry?.seq).toBe(6);
    await expect(
      callUnary(client.getEntry.bind(client), { entryId: 'aud_nope' }, { metadata: asOperator }),
    ).rejects.toMatchObject({ code: status.NOT_FOUND });
    const err = await query({ pageToken: 'garbage' }).catch((e: ServiceError) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(reasonOfGrpcError(err as ServiceError)?.reason).toBe('INPUT_INVALID');
  });

  it('refuses without a token (UNAUTHENTICATED) and an agent (PERMISSION_DENIED)', async () => {
    const err = await query({}, new Metadata()).catch((e: ServiceError) => e);
    expect(err).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(reasonOfGrpcError(err as ServiceError)?.reason).toBe('PRINCIPAL_UNAUTHENTICATED');
    await expect(query({}, asAgent)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
  });

  it('verifies the chain and reports the first broken link', async () => {
    const ok = await callUnary(
      client.verify.bind(client),
      { fromSeq: 0, toSeq: 0 },
      {
        metadata: asOperator,
      },
    );
    expect(ok).toMatchObject({
      status: audit.ChainStatus.CHAIN_STATUS_INTACT,
      entriesChecked: 12,
      lastSeq: 12,
    });
    await tamperWithEntry(database.db, 9, 'resource_canonical', '/root');
    const broken = await callUnary(
      client.verify.bind(client),
      { fromSeq: 0, toSeq: 0 },
      {
        metadata: asOperator,
      },
    );
    expect(broken).toMatchObject({
      status: audit.ChainStatus.CHAIN_STATUS_BROKEN,
      entriesChecked: 9,
      firstBrokenLink: { seq: 9, entryId: ENTRIES[8]!.id, detail: 'hash_mismatch' },
    });
  });
});
