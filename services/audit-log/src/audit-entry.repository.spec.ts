import type { AuditEntry } from '@hcp/core';
import type { Database } from '@hcp/platform';
import { freshDatabase } from '@hcp/platform/testing';
import { migrateAuditLog } from './audit-log';
import { AuditEntryRepository } from './audit-entry.repository';
import { AuditQueryService } from './audit-query.service';
import { entryHash, GENESIS_HASH } from './chain';
import type { AuditDb } from './database';
import { testEntry } from './testing';

/**
 * The chain writer (ADR 0005 §1): one guarded statement per batch, the locked path for a
 * redelivery, and a linear chain with two writers on one database. PGlite by default; the same
 * spec runs on PostgreSQL with HCP_TEST_POSTGRES_URL set.
 */
describe('AuditEntryRepository, the chain writer', () => {
  let database: Database<AuditDb>;
  const items = (entries: readonly AuditEntry[]) =>
    entries.map((entry) => ({ entry, source: 't' }));

  beforeEach(async () => {
    database = await freshDatabase<AuditDb>({ migrate: migrateAuditLog });
  });
  afterEach(async () => {
    await database.close();
  });

  async function storedIds(): Promise<{ seq: number; id: string }[]> {
    const rows = await database.db
      .selectFrom('audit_entries')
      .select(['seq', 'id'])
      .orderBy('seq')
      .execute();
    return rows.map((r) => ({ seq: Number(r.seq), id: r.id }));
  }

  it('writes each batch in one statement, linked exactly as appending one by one', async () => {
    const repo = new AuditEntryRepository(database.db);
    const entries = Array.from({ length: 10 }, (_, i) => testEntry(i + 1));
    const first = await repo.appendBatch(items(entries.slice(0, 3)), 1000);
    const rest = await repo.appendBatch(items(entries.slice(3)), 2000);
    expect([...first, ...rest].map((r) => r.status)).toEqual(Array(10).fill('appended'));
    expect(repo.writerStats).toEqual({ statements: 2, headMoved: 0, lockedFallbacks: 0 });
    let hash = GENESIS_HASH;
    for (const e of entries) hash = entryHash(hash, e);
    expect(await repo.head()).toEqual({ seq: 10, hash });
    const stored = await repo.get(entries[4]!.id);
    expect(stored).toMatchObject({ ...entries[4], seq: 5, source: 't', ingestedAt: 2000 });
    expect(await new AuditQueryService(repo).verify()).toMatchObject({ ok: true, checked: 10 });
  });

  it('stores a NUL, a lone surrogate and an empty handle list through the arrays as sent', async () => {
    const repo = new AuditEntryRepository(database.db);
    const odd = testEntry(1, {
      principalId: 'a\u0000b',
      resourceRaw: '\ud800"{,}\\',
      handleIds: ['h\u0000', 'x,"y"'],
    });
    const plain = testEntry(2, { handleIds: [], traceId: undefined, rule: 'NULL' });
    await repo.appendBatch(items([odd, plain]), 1000);
    expect(await repo.get(odd.id)).toMatchObject({ ...odd, seq: 1 });
    const stored = await repo.get(plain.id);
    expect(stored).toMatchObject({ seq: 2, handleIds: [], rule: 'NULL' });
    expect(stored).not.toHaveProperty('traceId');
    expect(await new AuditQueryService(repo).verify()).toMatchObject({ ok: true, checked: 2 });
  });

  it('a batch holding stored ids takes the locked path: duplicates skipped, a changed one flagged', async () => {
    const repo = new AuditEntryRepository(database.db);
    await repo.appendBatch(items([testEntry(1), testEntry(2)]), 1000);
    const results = await repo.appendBatch(
      items([testEntry(2), testEntry(3), testEntry(1, { outcome: 'deny' })]),
      2000,
    );
    expect(results).toEqual([
      { status: 'duplicate', seq: 2, sameContent: true },
      { status: 'appended', seq: 3, hash: expect.any(String) as string },
      { status: 'duplicate', seq: 1, sameContent: false },
    ]);
    expect(repo.writerStats).toMatchObject({ statements: 1, lockedFallbacks: 1 });
    // The allowed neighbour: the next batch of new ids is one statement again.
    await repo.appendBatch(items([testEntry(4)]), 3000);
    expect(repo.writerStats).toMatchObject({ statements: 2, lockedFallbacks: 1 });
    expect((await storedIds()).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
  });

  it('an id twice in one batch is stored once, the second a duplicate of the first', async () => {
    const repo = new AuditEntryRepository(database.db);
    const results = await repo.appendBatch(
      items([testEntry(1), testEntry(1), testEntry(1, { outcome: 'deny' })]),
      1000,
    );
    expect(results.map((r) => r.status)).toEqual(['appended', 'duplicate', 'duplicate']);
    expect(results.slice(1)).toEqual([
      { status: 'duplicate', seq: 1, sameContent: true },
      { status: 'duplicate', seq: 1, sameContent: false },
    ]);
    expect(repo.writerStats).toMatchObject({ statements: 1, lockedFallbacks: 0 });
  });

  it('finds the head moved by another writer, reloads it and links after it', async () => {
    const a = new AuditEntryRepository(database.db);
    const b = new AuditEntryRepository(database.db);
    await a.appendBatch(items([testEntry(1)]), 1000);
    await b.appendBatch(items([testEntry(2)]), 1000); // b reads the head: seq 1
    await a.appendBatch(items([testEntry(3)]), 1000); // a remembers seq 1: moved, retried
    await b.appendBatch(items([testEntry(4)]), 1000); // b remembers seq 2: moved, retried
    expect(a.writerStats.headMoved).toBe(1);
    expect(b.writerStats.headMoved).toBe(1);
    expect(await storedIds()).toEqual([1, 2, 3, 4].map((i) => ({ seq: i, id: testEntry(i).id })));
    expect(await new AuditQueryService(a).verify()).toMatchObject({ ok: true, checked: 4 });
  });

  it('keeps the chain linear with two writers appending at once, redeliveries included', async () => {
    const a = new AuditEntryRepository(database.db);
    const b = new AuditEntryRepository(database.db);
    const total = 240;
    const entries = Array.from({ length: total }, (_, i) => testEntry(i + 1));
    // Each writer gets batches of 1..6 entries; every 7th batch of b repeats one of a's entries
    // (a message both processes saw), so ids collide across writers too.
    const batchesOf = (list: readonly AuditEntry[], seed: number) => {
      const out: AuditEntry[][] = [];
      for (let i = 0, n = seed; i < list.length; n++) {
        const size = 1 + (n % 6);
        out.push(list.slice(i, i + size));
        i += size;
      }
      return out;
    };
    const mine = batchesOf(entries.slice(0, total / 2), 0);
    const theirs = batchesOf(entries.slice(total / 2), 3).map((batch, i) =>
      i % 7 === 0 ? [...batch, entries[i]!] : batch,
    );
    const run = async (repo: AuditEntryRepository, batches: AuditEntry[][]) => {
      for (const batch of batches) await repo.appendBatch(items(batch), Date.now());
    };
    await Promise.all([run(a, mine), run(b, theirs), run(a, [[entries[0]!]])]);
    const stored = await storedIds();
    expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(new Set(stored.map((r) => r.id))).toEqual(new Set(entries.map((e) => e.id)));
    expect(await new AuditQueryService(a).verify()).toMatchObject({
      ok: true,
      checked: total,
      lastSeq: total,
    });
    const moved = a.writerStats.headMoved + b.writerStats.headMoved;
    const statements = a.writerStats.statements + b.writerStats.statements;
    const locked = a.writerStats.lockedFallbacks + b.writerStats.lockedFallbacks;
    expect(statements + locked).toBe(mine.length + theirs.length + 1);
    // They did race: a writer found the head moved, or took the locked path for a shared id.
    expect(moved + locked).toBeGreaterThan(0);
  });
});
