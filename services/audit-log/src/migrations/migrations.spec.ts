import { sql } from 'kysely';
import { openDatabase, type Database } from '@hcp/platform';
import type { AuditDb } from '../database';
import { migrateAuditLog } from '../audit-log';

describe('audit-log migrations (PGlite)', () => {
  let database: Database<AuditDb>;
  beforeAll(async () => {
    database = await openDatabase<AuditDb>({ kind: 'pglite' });
  });
  afterAll(() => database.close());

  it('migrates once, idempotently, starting the chain at the genesis head', async () => {
    await expect(migrateAuditLog(database.db)).resolves.toEqual([
      '20261128120000-InitialSchema',
      '20261128120001-DecisionIdIndex',
    ]);
    await expect(migrateAuditLog(database.db)).resolves.toEqual([]);
    const head = await database.db
      .selectFrom('audit_chain_head')
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(Number(head.seq)).toBe(0);
    expect(head.hash).toBe('0'.repeat(64));
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the chain and the dead letters (append-only)', async () => {
    const at = new Date();
    await database.db
      .insertInto('audit_entries')
      .values({
        seq: 1,
        id: 'aud_m',
        time: at,
        decision_id: '',
        principal_id: null,
        endpoint_family: 'protocol',
        capability_id: null,
        resource_raw: null,
        resource_canonical: null,
        outcome: 'deny',
        reason: 'SESSION_NOT_INITIALIZED',
        invariant: null,
        check_name: null,
        matched_grant_id: null,
        missing_grant: null,
        rule: null,
        approval_id: null,
        handle_ids: '[]',
        trace_id: null,
        prev_hash: '0'.repeat(64),
        hash: '1'.repeat(64),
        source: 'test',
        ingested_at: at,
      })
      .execute();
    await expect(
      database.db
        .updateTable('audit_entries')
        .set({ outcome: 'allow' })
        .where('seq', '=', 1)
        .execute(),
    ).rejects.toThrow(/append-only/);
    await expect(database.db.deleteFrom('audit_entries').execute()).rejects.toThrow(/append-only/);
    await expect(sql`truncate audit_entries`.execute(database.db)).rejects.toThrow(/append-only/);
    await database.db
      .insertInto('audit_rejects')
      .values({
        stream_seq: 1,
        subject: 'hcp.audit.protocol',
        entry_id: null,
        source: null,
        reason: 'x',
        payload: new Uint8Array([1]),
        received_at: at,
      })
      .execute();
    await expect(database.db.deleteFrom('audit_rejects').execute()).rejects.toThrow(/append-only/);
    const n = await database.db
      .selectFrom('audit_entries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(1);
  });
});
