import { sql, type Kysely } from 'kysely';
import { freshDatabase, RecordingAudit, testClock, testPostgresUrl } from './index';

const entry = (id: string) =>
  ({ id, decisionId: `dec_${id}`, outcome: 'deny', reason: 'NO_MATCHING_GRANT' }) as never;

describe('the shared test kit', () => {
  it('RecordingAudit keeps entries in order, refuses while full, and refuses one record on demand', () => {
    const audit = new RecordingAudit();
    audit.record(entry('a'));
    audit.full = true;
    expect(audit.available()).toBe(false);
    expect(() => audit.record(entry('b'))).toThrow(/test audit buffer is full/);
    audit.full = false;
    audit.refuseNext = true;
    expect(audit.available()).toBe(true);
    expect(() => audit.record(entry('c'))).toThrow(/test audit buffer is full/);
    audit.record(entry('d'));
    expect(audit.take().map((e) => e.id)).toEqual(['a', 'd']);
    expect(audit.entries).toEqual([]);
  });

  it('testClock starts where told and moves only by hand', () => {
    const clock = testClock(1000);
    clock.advance(5);
    expect(clock()).toBe(1005);
    clock.set(7);
    expect(clock()).toBe(7);
  });

  it('freshDatabase hands out migrated databases that share nothing', async () => {
    const migrate = async (db: Kysely<unknown>) => {
      await db.schema.createTable('things').addColumn('id', 'text').execute();
    };
    const a = await freshDatabase({ migrate });
    const b = await freshDatabase({ migrate });
    try {
      await sql`insert into things values ('only-in-a')`.execute(a.db);
      const rows = await sql<{ id: string }>`select id from things`.execute(b.db);
      expect(rows.rows).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('freshDatabase closes what it opened when the migration fails', async () => {
    await expect(
      freshDatabase({ migrate: (db) => sql`select * from no_such_table`.execute(db) }),
    ).rejects.toBeDefined();
  });

  it('reads the first PostgreSQL URL set among the variables it is given', () => {
    process.env['HCP_KIT_SPEC_A'] = '';
    process.env['HCP_KIT_SPEC_B'] = 'postgres://x/y';
    try {
      expect(testPostgresUrl(['HCP_KIT_SPEC_A', 'HCP_KIT_SPEC_B'])).toBe('postgres://x/y');
      expect(testPostgresUrl(['HCP_KIT_SPEC_A'])).toBeUndefined();
    } finally {
      delete process.env['HCP_KIT_SPEC_A'];
      delete process.env['HCP_KIT_SPEC_B'];
    }
  });
});
