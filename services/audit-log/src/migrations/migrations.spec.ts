import { sql, type Kysely } from 'kysely';
import { encodeAuditEvent, migrateToLatest, openDatabase, type Database } from '@hcp/platform';
import type { AuditDb } from '../database';
import { migrateAuditLog } from '../audit-log';
import { AuditEntryRepository } from '../audit-entry.repository';
import { AuditQueryService } from '../audit-query.service';
import { testEntry } from '../testing';
import { AUDIT_LOG_MIGRATION_TABLE, auditLogMigrations } from './index';

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
      '20261203160000-LosslessText',
    ]);
    await expect(migrateAuditLog(database.db)).resolves.toEqual([]);
    const head = await database.db
      .selectFrom('audit_chain_head')
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(Number(head.seq)).toBe(0);
    expect(head.hash).toBe('0'.repeat(64));
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the chain (append-only), and has no dead-letter table', async () => {
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
    await expect(sql`select 1 from audit_rejects`.execute(database.db)).rejects.toThrow(
      /does not exist/,
    );
    const n = await database.db
      .selectFrom('audit_entries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(1);
  });

  it('moves the dead letters of an older schema into the chain, then drops their table', async () => {
    const old = await openDatabase<AuditDb>({ kind: 'pglite' });
    try {
      const { '20261203160000-LosslessText': _next, ...before } = auditLogMigrations;
      await migrateToLatest(
        old.db as unknown as Kysely<unknown>,
        before,
        AUDIT_LOG_MIGRATION_TABLE,
      );
      // What the old ingest parked: an entry with a NUL (storable now), and bytes that never were
      // an event.
      const withNul = testEntry(1, { resourceRaw: 'a\u0000b', decisionId: 'dec_told' });
      const garbage = new Uint8Array([0xff, 0xff, 0xff]);
      for (const [i, payload] of [encodeAuditEvent(withNul, 'edge', 0), garbage].entries())
        await sql`insert into audit_rejects (stream_seq, subject, reason, payload, received_at)
          values (${i + 7}, 'hcp.audit.tools_call', 'parked', ${payload}, now())`.execute(old.db);
      await expect(migrateAuditLog(old.db)).resolves.toEqual(['20261203160000-LosslessText']);
      const query = new AuditQueryService(new AuditEntryRepository(old.db));
      const page = await query.query({}, { limit: 10, cursorField: 'cursor' });
      expect(page.entries).toHaveLength(2);
      expect(page.entries[0]).toMatchObject({ ...withNul, seq: 1, source: 'edge' });
      expect(page.entries[1]).toMatchObject({
        seq: 2,
        reason: 'INPUT_INVALID',
        check: 'audit_ingest',
        resourceRaw: `base64:${Buffer.from(garbage).toString('base64')}`,
        resourceCanonical: 'hcp.audit.tools_call#8',
      });
      expect(await query.verify()).toMatchObject({ ok: true, checked: 2 });
      await expect(sql`select 1 from audit_rejects`.execute(old.db)).rejects.toThrow(
        /does not exist/,
      );
    } finally {
      await old.close();
    }
  });
});
