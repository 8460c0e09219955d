import type { AuditEntry } from '@hcp/core';
import { ensureAuditStream, InProcessBus, openDatabase, type Database } from '@hcp/platform';
import { audit, auditEntryToProto } from '@hcp/proto';
import { migrateAuditLog, startAuditLog, type RunningAuditLog } from './audit-log';
import { entryHash } from './chain';
import { AuditEntryRepository } from './audit-entry.repository';
import { AuditIngestService, emptyIngestStats, recordBatchSize } from './audit-ingest.service';
import { INGEST_CHECK } from './audit-refusal';
import type { AuditDb } from './database';
import {
  deleteEntry,
  publishBatch,
  publishEntries,
  tamperWithEntry,
  TEST_AUTH,
  testEntry,
  until,
} from './testing';

async function count(db: Database<AuditDb>): Promise<number> {
  const r = await db.db
    .selectFrom('audit_entries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The fields storage adds to an entry (its place in the chain and ingest metadata). */
function chainFields(e: {
  seq: number;
  prevHash: string;
  hash: string;
  source: string;
  ingestedAt: number;
}) {
  return {
    seq: e.seq,
    prevHash: e.prevHash,
    hash: e.hash,
    source: e.source,
    ingestedAt: e.ingestedAt,
  };
}

async function ids(db: Database<AuditDb>): Promise<string[]> {
  const rows = await db.db.selectFrom('audit_entries').select('id').orderBy('seq').execute();
  return rows.map((r) => r.id);
}

describe('audit-log ingest (PGlite + in-process bus)', () => {
  let database: Database<AuditDb>;
  let bus: InProcessBus;
  let running: RunningAuditLog[];
  const start = async () => {
    const a = await startAuditLog({
      db: database,
      bus,
      httpPort: 0,
      verifier: TEST_AUTH,
      ackWaitMs: 50,
    });
    running.push(a);
    return a;
  };

  beforeEach(async () => {
    database = await openDatabase<AuditDb>({ kind: 'pglite' });
    bus = new InProcessBus();
    running = [];
  });
  afterEach(async () => {
    for (const a of running) await a.close();
    await bus.close();
    await database.close();
  });

  it('stores N events published with duplicates exactly once each, in order, and the chain verifies', async () => {
    const a = await start();
    const entries = Array.from({ length: 40 }, (_, i) => testEntry(i + 1));
    // Every fifth entry is published again with the same msgId (the stream drops it), and every
    // seventh once more after the stream's de-duplication window (audit-log must drop it).
    await publishEntries(bus, entries);
    await publishEntries(
      bus,
      entries.filter((_, i) => i % 5 === 0),
    );
    await publishEntries(
      bus,
      entries.filter((_, i) => i % 7 === 0),
      {
        source: 'retry',
        msgIdSuffix: '-late',
      },
    );
    await until(async () => a.stats.duplicates === 6 && (await count(database)) >= 40, 'ingest');
    expect(await count(database)).toBe(40);
    expect(await ids(database)).toEqual(entries.map((e) => e.id));
    const result = await a.query.verify();
    expect(result).toMatchObject({ ok: true, checked: 40, lastSeq: 40 });
    const stored = await a.query.get(entries[3]!.id);
    expect(stored).toMatchObject({ ...entries[3], seq: 4, source: 'test' });
  });

  it('keeps exactly N across consumer restarts while publishing', async () => {
    let a = await start();
    const entries = Array.from({ length: 60 }, (_, i) => testEntry(i + 1));
    const publishing = (async () => {
      for (const [i, e] of entries.entries()) {
        await publishEntries(bus, [e]);
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    for (let restart = 0; restart < 3; restart++) {
      await new Promise((r) => setTimeout(r, 15));
      await a.close();
      a = await start();
    }
    await publishing;
    // Re-publish everything after the stream's de-duplication window, as a publisher retrying
    // after a long outage would: audit-log itself must drop them.
    await publishEntries(bus, entries, { msgIdSuffix: '-late' });
    await until(() => a.stats.duplicates === 60, 'the 60 re-published events');
    await new Promise((r) => setTimeout(r, 50));
    expect(await count(database)).toBe(60);
    expect(new Set(await ids(database)).size).toBe(60);
    expect(await a.query.verify()).toMatchObject({ ok: true, checked: 60 });
  });

  /** The ingest refusal entries in the chain, oldest first. */
  async function refusals(a: RunningAuditLog) {
    return (await a.query.query({}, { limit: 1000, cursorField: 'cursor' })).entries.filter(
      (e) => e.check === INGEST_CHECK,
    );
  }

  it('records each event it cannot store as an entry as an ingest refusal in the chain, and keeps consuming', async () => {
    const a = await start();
    const good = testEntry(1);
    const rawEntry = auditEntryToProto(testEntry(2, { decisionId: 'dec_caller_was_told' }));
    const bad: [string, Uint8Array][] = [
      ['undecodable', new Uint8Array([0xff, 0xff, 0xff, 0xff])],
      ['no entry', audit.AuditEvent.encode({ source: 'edge' }).finish()],
      [
        'no reason',
        audit.AuditEvent.encode({ entry: { ...rawEntry, reason: 0 }, source: 'edge' }).finish(),
      ],
      [
        'seq set',
        audit.AuditEvent.encode({ entry: { ...rawEntry, seq: 5 }, source: 'edge' }).finish(),
      ],
      ['no source', audit.AuditEvent.encode({ entry: rawEntry, source: '' }).finish()],
    ];
    await publishEntries(bus, []);
    for (const [name, data] of bad)
      await bus.publishDurable('hcp.audit.tools_call', data, { msgId: name });
    await publishEntries(bus, [good]);
    await until(async () => (await count(database)) === 6, 'five refusals and the good entry');
    const recorded = await refusals(a);
    expect(recorded.map((r) => r.rule)).toEqual([
      expect.stringMatching(/^undecodable AuditEvent/),
      'entry: is required',
      expect.stringMatching(/^entry\.reason: /),
      expect.stringMatching(/^entry\.seq: /),
      'source: is required',
    ]);
    for (const [i, r] of recorded.entries()) {
      expect(r).toMatchObject({
        endpointFamily: 'protocol',
        outcome: 'deny',
        reason: 'INPUT_INVALID',
        source: 'audit-log',
        // The bytes as delivered, and where they sat in the stream.
        resourceRaw: `base64:${Buffer.from(bad[i]![1]).toString('base64')}`,
        resourceCanonical: expect.stringMatching(/^hcp\.audit\.tools_call#\d+$/) as string,
      });
    }
    // The decision id the caller was told finds the record of why its entry is not there.
    expect(recorded[2]).toMatchObject({
      decisionId: 'dec_caller_was_told',
      principalId: 'agent-7',
    });
    expect(a.stats.rejected).toBe(5);
    expect(await a.query.get(good.id)).toMatchObject({ seq: 6 });
    expect(await a.query.verify()).toMatchObject({ ok: true, checked: 6 });
  });

  it('stores NUL characters, C0/C1 controls and a 1 MiB value from the stream exactly as sent', async () => {
    const a = await start();
    const mib = 'x'.repeat(1024 * 1024 - 2) + '\u0000é';
    const entries = [
      testEntry(1, {
        principalId: 'agent\u0000root',
        resourceRaw: 'a\u0000b',
        handleIds: ['h\u0000', 'plain'],
        traceId: 'trace\u0000\u0001\u009f',
      }),
      testEntry(2, { resourceRaw: mib, resourceCanonical: mib, missingGrant: mib, rule: mib }),
      // Neither needs escaping, but each looks like an escape: stored plain, read back as is.
      testEntry(3, { principalId: 'agent\\u0000root', resourceRaw: 'C:\\dir\\"q"' }),
      testEntry(4, { principalId: 'x'.repeat(5000), capabilityId: 'c'.repeat(3000) }),
      // Lone surrogates: escaped and marked on the stream (UTF-8 has no form for them), escaped in
      // the row (PostgreSQL neither).
      testEntry(5, { principalId: 'agent-\udc00', resourceRaw: '\ud800x', handleIds: ['\ud83d'] }),
    ];
    await publishEntries(bus, entries);
    await until(() => a.stats.appended === 5, 'five entries');
    for (const e of entries)
      expect(await a.query.get(e.id)).toEqual({ ...e, ...chainFields(await a.query.get(e.id)) });
    expect(await a.query.verify()).toMatchObject({ ok: true, checked: 5 });
    const rows = await database.db
      .selectFrom('audit_entries')
      .select(['seq', 'text_escaped', 'principal_id'])
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.text_escaped)).toEqual([true, true, false, false, true]);
    expect(rows[0]!.principal_id).toBe('agent\\u0000root');
  });

  it('the allowed neighbour: an entry with nothing to escape is stored exactly as before', async () => {
    const a = await start();
    await publishEntries(bus, [testEntry(1, { resourceRaw: '/srv/ünïcödé/😀' })]);
    await until(() => a.stats.appended === 1, 'the entry');
    const row = await database.db.selectFrom('audit_entries').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ text_escaped: false, resource_raw: '/srv/ünïcödé/😀' });
  });

  it('keeps the first of two different events with one id and records the second as a refusal', async () => {
    const a = await start();
    await publishEntries(bus, [testEntry(1)]);
    await publishEntries(bus, [testEntry(1, { outcome: 'deny', reason: 'NO_MATCHING_GRANT' })], {
      msgIdSuffix: '-forged',
    });
    await until(() => a.stats.rejected === 1, 'the refusal');
    expect((await a.query.get(testEntry(1).id)).outcome).toBe('allow');
    const [refusal] = await refusals(a);
    expect(refusal?.rule).toMatch(/^entry\.id: already stored at seq 1 with different content/);
    expect(refusal?.decisionId).toBe(testEntry(1).decisionId);
  });

  it('holds the stream while the database fails, and stores the event once it is back', async () => {
    const entries = new AuditEntryRepository(database.db);
    await migrateAuditLog(database.db);
    let fail = 2;
    const flaky = Object.create(entries) as AuditEntryRepository;
    flaky.append = (...args: Parameters<AuditEntryRepository['append']>) =>
      fail-- > 0 ? Promise.reject(new Error('connection terminated')) : entries.append(...args);
    flaky.appendBatch = (...args: Parameters<AuditEntryRepository['appendBatch']>) =>
      fail-- > 0
        ? Promise.reject(new Error('connection terminated'))
        : entries.appendBatch(...args);
    const ingest = new AuditIngestService(bus, flaky, { ackWaitMs: 20 });
    // Published before the consumer starts, so they arrive as one batch.
    await ensureAuditStream(bus);
    await publishEntries(bus, [testEntry(1), testEntry(2), testEntry(3)]);
    await ingest.start();
    try {
      await until(async () => (await count(database)) === 3, 'all three entries');
      expect(await ids(database)).toEqual([1, 2, 3].map((i) => testEntry(i).id));
      expect(ingest.stats.rejected).toBe(0);
    } finally {
      await ingest.stop();
    }
  });

  it('appends a waiting backlog in batches: same chain, duplicates and bad events handled per event', async () => {
    await ensureAuditStream(bus);
    const entries = Array.from({ length: 300 }, (_, i) => testEntry(i + 1));
    await publishEntries(bus, entries.slice(0, 150));
    await bus.publishDurable('hcp.audit.tools_call', new Uint8Array([0xff, 0xff]), {
      msgId: 'garbage',
    });
    // Same id as an entry of this backlog, different facts (kept first, parked second), and an
    // identical re-publish after the de-duplication window (dropped), both inside one batch.
    await publishEntries(bus, [testEntry(3, { outcome: 'deny', reason: 'NO_MATCHING_GRANT' })], {
      msgIdSuffix: '-forged',
    });
    await publishEntries(bus, [entries[4]!], { msgIdSuffix: '-late' });
    await publishEntries(bus, entries.slice(150));
    const entryRepo = new AuditEntryRepository(database.db);
    const batches: number[] = [];
    const counting = Object.create(entryRepo) as AuditEntryRepository;
    counting.appendBatch = (...args: Parameters<AuditEntryRepository['appendBatch']>) => {
      batches.push(args[0].length);
      return entryRepo.appendBatch(...args);
    };
    await migrateAuditLog(database.db);
    const ingest = new AuditIngestService(bus, counting, { maxBatch: 64 });
    await ingest.start();
    try {
      await until(async () => (await count(database)) === 302, '300 entries and 2 refusals');
      await until(() => ingest.stats.rejected === 2 && ingest.stats.duplicates === 1, 'the rest');
    } finally {
      await ingest.stop();
    }
    expect(Math.max(...batches)).toBeLessThanOrEqual(64);
    expect(batches.length).toBeLessThan(20);
    expect((await ids(database)).filter((id) => id.startsWith('aud_test_'))).toEqual(
      entries.map((e) => e.id),
    );
    const a = await start();
    expect(await a.query.verify()).toMatchObject({ ok: true, checked: 302, lastSeq: 302 });
    // The garbage in stream order; the forged duplicate once its batch has committed.
    const recorded = await refusals(a);
    expect(recorded).toHaveLength(2);
    expect(recorded[0]).toMatchObject({ seq: 151, rule: expect.stringMatching(/^undecodable/) });
    expect(recorded[1]!.rule).toMatch(/^entry\.id: already stored at seq 3 /);
    expect((await a.query.get(testEntry(3).id)).outcome).toBe('allow');
    // The hash of each entry is what appending it alone would give.
    const e2 = await a.query.get(testEntry(2).id);
    const e3 = await a.query.get(testEntry(3).id);
    expect(e3.hash).toBe(entryHash(e2.hash, entries[2]!));
  });

  it('when the database refuses a batch for good, appends one by one and records only the bad event as a refusal', async () => {
    await migrateAuditLog(database.db);
    await ensureAuditStream(bus);
    await publishEntries(
      bus,
      [1, 2, 3].map((i) => testEntry(i)),
    );
    const entryRepo = new AuditEntryRepository(database.db);
    const refusing = Object.create(entryRepo) as AuditEntryRepository;
    refusing.appendBatch = () =>
      Promise.reject(Object.assign(new Error('value too long'), { code: '22001' }));
    refusing.append = (entry, ...rest) =>
      entry.id === testEntry(2).id
        ? Promise.reject(Object.assign(new Error('value too long'), { code: '22001' }))
        : entryRepo.append(entry, ...rest);
    const ingest = new AuditIngestService(bus, refusing);
    await ingest.start();
    try {
      await until(() => ingest.stats.appended === 2 && ingest.stats.rejected === 1, 'outcomes');
    } finally {
      await ingest.stop();
    }
    const stored = await ids(database);
    expect(stored.filter((id) => id.startsWith('aud_test_'))).toEqual([
      testEntry(1).id,
      testEntry(3).id,
    ]);
    const a = await start();
    const [refusal] = await refusals(a);
    expect(refusal).toMatchObject({
      decisionId: testEntry(2).decisionId,
      rule: 'database refused the entry: value too long',
    });
  });

  it('buckets batch sizes by the first bound each does not exceed', () => {
    const stats = emptyIngestStats();
    for (const size of [1, 1, 2, 3, 64, 65, 256, 257, 1000]) recordBatchSize(stats, size);
    expect(stats.batches).toBe(9);
    expect(stats.batchSizes).toEqual({
      '1': 2,
      '2': 1,
      '4': 1,
      '8': 0,
      '16': 0,
      '32': 0,
      '64': 1,
      '128': 1,
      '256': 1,
      '+Inf': 2,
    });
  });

  describe('batches on hcp.audit.batch (ADR 0005 §1)', () => {
    it('appends every frame of a batch as its own entry, in frame order, escaped frames unescaped', async () => {
      const a = await start();
      const entries = [
        testEntry(1),
        testEntry(2, { principalId: 'agent-\udc00', handleIds: ['\ud83d'] }),
        testEntry(3),
      ];
      await publishBatch(bus, 'batch-1', entries);
      await until(() => a.stats.appended === 3, 'three entries');
      expect(await ids(database)).toEqual(entries.map((e) => e.id));
      for (const e of entries)
        expect(await a.query.get(e.id)).toEqual({ ...e, ...chainFields(await a.query.get(e.id)) });
      expect(a.stats.rejected).toBe(0);
      expect(await a.query.verify()).toMatchObject({ ok: true, checked: 3, lastSeq: 3 });
    });

    it('records a malformed frame as an ingest refusal with its bytes and appends the other frames', async () => {
      const a = await start();
      const garbage = new Uint8Array([0xff, 0xff, 0xff]);
      const noSource = audit.AuditEvent.encode({
        entry: auditEntryToProto(testEntry(3, { decisionId: 'dec_told' })),
        source: '',
      }).finish();
      await publishBatch(bus, 'batch-1', [testEntry(1), garbage, noSource, testEntry(2)]);
      await until(async () => (await count(database)) === 4, 'two entries and two refusals');
      const rows = await a.query.query({}, { limit: 10, cursorField: 'cursor' });
      expect(rows.entries.map((e) => e.id.startsWith('aud_test_'))).toEqual([
        true,
        false,
        false,
        true,
      ]);
      const recorded = await refusals(a);
      expect(recorded.map((r) => r.rule)).toEqual([
        expect.stringMatching(/^undecodable AuditEvent/),
        'source: is required',
      ]);
      expect(recorded[0]).toMatchObject({
        resourceRaw: `base64:${Buffer.from(garbage).toString('base64')}`,
        resourceCanonical: expect.stringMatching(/^hcp\.audit\.batch#\d+\/1$/) as string,
      });
      expect(recorded[1]).toMatchObject({
        decisionId: 'dec_told',
        resourceRaw: `base64:${Buffer.from(noSource).toString('base64')}`,
        resourceCanonical: expect.stringMatching(/^hcp\.audit\.batch#\d+\/2$/) as string,
      });
      expect(a.stats).toMatchObject({ appended: 2, rejected: 2 });
      expect(await a.query.verify()).toMatchObject({ ok: true, checked: 4 });
    });

    it('records a batch that does not decode, or has no frame, as one refusal with all its bytes, and keeps consuming', async () => {
      const a = await start();
      const undecodable = new Uint8Array([0x12, 0xff, 0xff, 0xff]);
      const empty = audit.AuditEventBatch.encode({ batchId: 'empty', frames: [] }).finish();
      await ensureAuditStream(bus);
      await bus.publishDurable('hcp.audit.batch', undecodable, { msgId: 'garbage' });
      await bus.publishDurable('hcp.audit.batch', empty, { msgId: 'empty' });
      await publishBatch(bus, 'batch-ok', [testEntry(1)]);
      await until(async () => (await count(database)) === 3, 'two refusals and the entry');
      const recorded = await refusals(a);
      expect(recorded.map((r) => r.rule)).toEqual([
        expect.stringMatching(/^undecodable AuditEventBatch/),
        'frames: at least one is required',
      ]);
      expect(recorded[0]).toMatchObject({
        resourceRaw: `base64:${Buffer.from(undecodable).toString('base64')}`,
        resourceCanonical: expect.stringMatching(/^hcp\.audit\.batch#\d+$/) as string,
      });
      expect(await a.query.get(testEntry(1).id)).toMatchObject({ seq: 3 });
      expect(a.stats).toMatchObject({ appended: 1, rejected: 2 });
    });

    it('a redelivered batch adds no entry twice; a changed frame under a stored id is a refusal', async () => {
      await migrateAuditLog(database.db);
      const entries = [1, 2, 3].map((i) => testEntry(i));
      const repo = new AuditEntryRepository(database.db);
      // The first attempt commits, then "fails" (as if the ack were lost): the bus redelivers.
      let lose = 1;
      const losing = Object.create(repo) as AuditEntryRepository;
      losing.appendBatch = async (...args: Parameters<AuditEntryRepository['appendBatch']>) => {
        const r = await repo.appendBatch(...args);
        if (lose-- > 0) throw new Error('connection terminated');
        return r;
      };
      const ingest = new AuditIngestService(bus, losing, { ackWaitMs: 20 });
      await publishBatch(bus, 'batch-1', entries);
      await ingest.start();
      try {
        await until(() => ingest.stats.duplicates === 3, 'the redelivery, skipped');
        // Re-sent after the de-duplication window with one new entry and one changed one.
        await publishBatch(bus, 'batch-1-late', [
          entries[0]!,
          testEntry(2, { outcome: 'deny', reason: 'NO_MATCHING_GRANT' }),
          testEntry(4),
        ]);
        await until(() => ingest.stats.appended === 1 && ingest.stats.rejected === 1, 'outcomes');
      } finally {
        await ingest.stop();
      }
      expect(ingest.stats.duplicates).toBe(4);
      expect((await ids(database)).filter((id) => id.startsWith('aud_test_'))).toEqual(
        [1, 2, 3, 4].map((i) => testEntry(i).id),
      );
      const a = await start();
      expect((await a.query.get(testEntry(2).id)).outcome).toBe('allow');
      expect(await a.query.verify()).toMatchObject({ ok: true, checked: 5 });
    });

    it('appends single-entry messages and batches delivered together in stream order, in one append', async () => {
      await ensureAuditStream(bus);
      const entries = Array.from({ length: 6 }, (_, i) => testEntry(i + 1));
      await publishEntries(bus, [entries[0]!]);
      await publishBatch(bus, 'batch-a', [entries[1]!, entries[2]!]);
      await publishEntries(bus, [entries[3]!]);
      await publishBatch(bus, 'batch-b', [entries[4]!, entries[5]!]);
      const repo = new AuditEntryRepository(database.db);
      const appends: number[] = [];
      const counting = Object.create(repo) as AuditEntryRepository;
      counting.appendBatch = (...args: Parameters<AuditEntryRepository['appendBatch']>) => {
        appends.push(args[0].length);
        return repo.appendBatch(...args);
      };
      await migrateAuditLog(database.db);
      const ingest = new AuditIngestService(bus, counting, { maxBatch: 64 });
      await ingest.start();
      try {
        await until(() => ingest.stats.appended === 6, 'six entries');
      } finally {
        await ingest.stop();
      }
      expect(appends).toEqual([6]);
      // One append of six: counted in the histogram's bucket up to 8.
      expect(ingest.stats.batches).toBe(1);
      expect(ingest.stats.batchSizes).toMatchObject({ '4': 0, '8': 1, '16': 0 });
      expect(await ids(database)).toEqual(entries.map((e) => e.id));
      const a = await start();
      expect(await a.query.verify()).toMatchObject({ ok: true, checked: 6 });
    });
  });

  describe('verify after tampering (a DBA bypassing the append-only trigger)', () => {
    let a: RunningAuditLog;
    const n = 12;
    beforeEach(async () => {
      a = await start();
      await publishEntries(
        bus,
        Array.from({ length: n }, (_, i) => testEntry(i + 1)),
      );
      await until(async () => (await count(database)) === n, `${n} entries`);
      expect(await a.query.verify()).toMatchObject({ ok: true, checked: n });
    });

    it('names entry k when its canonical resource was rewritten (hash_mismatch)', async () => {
      await tamperWithEntry(database.db, 7, 'resource_canonical', '/etc/shadow');
      expect(await a.query.verify()).toMatchObject({
        ok: false,
        checked: 7,
        firstBroken: { seq: 7, id: testEntry(7).id, reason: 'hash_mismatch' },
      });
    });

    it('names entry k+1 when entry k was rewritten and its hash recomputed (prev_hash_mismatch)', async () => {
      const k = await a.query.get(testEntry(4).id);
      const forged: AuditEntry = { ...k, outcome: 'deny' };
      await tamperWithEntry(database.db, 4, 'outcome', 'deny');
      await tamperWithEntry(database.db, 4, 'hash', entryHash(k.prevHash, forged));
      expect((await a.query.verify()).firstBroken).toMatchObject({
        seq: 5,
        id: testEntry(5).id,
        reason: 'prev_hash_mismatch',
      });
    });

    it('reports a deleted entry as a seq_gap at its seq', async () => {
      await deleteEntry(database.db, 3);
      expect((await a.query.verify()).firstBroken).toMatchObject({
        seq: 3,
        id: '',
        reason: 'seq_gap',
      });
    });

    it('detects a rewritten last entry through the chain head, and a truncated tail', async () => {
      const last = await a.query.get(testEntry(n).id);
      await tamperWithEntry(database.db, n, 'principal_id', 'someone-else');
      await tamperWithEntry(
        database.db,
        n,
        'hash',
        entryHash(last.prevHash, { ...last, principalId: 'someone-else' }),
      );
      expect((await a.query.verify()).firstBroken).toMatchObject({
        seq: n,
        reason: 'hash_mismatch',
      });
      await deleteEntry(database.db, n);
      expect((await a.query.verify()).firstBroken).toMatchObject({
        seq: n,
        id: '',
        reason: 'seq_gap',
      });
    });

    it('verifies a sub-range, and keeps verifying while entries arrive', async () => {
      expect(await a.query.verify({ fromSeq: 5, toSeq: 9 })).toMatchObject({
        ok: true,
        checked: 5,
        lastSeq: 9,
      });
      await publishEntries(bus, [testEntry(n + 1)]);
      await until(async () => (await count(database)) === n + 1, 'one more');
      expect(await a.query.verify()).toMatchObject({ ok: true, checked: n + 1 });
    });
  });
});
