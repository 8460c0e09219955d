import { sql, type Kysely, type Migration } from 'kysely';
import { migrateToLatest, type Database, type MigrationSet } from '../db/database';

interface Row {
  id: string;
}

const createTable = (table: string): Migration => ({
  up: async (db: Kysely<unknown>) => {
    await db.schema
      .createTable(table)
      .addColumn('id', 'text', (c) => c.primaryKey())
      .execute();
  },
  down: async (db: Kysely<unknown>) => {
    await db.schema.dropTable(table).execute();
  },
});

async function tableNames(db: Kysely<unknown>): Promise<string[]> {
  const r = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'public' order by table_name
  `.execute(db);
  return r.rows.map((x) => x.table_name);
}

/**
 * The database behaviour both adapters (PGlite for unit tests and the embedded
 * mode, PostgreSQL for the distributed mode) must show. `open` returns a fresh,
 * empty database each call.
 */
export function describeDatabaseConformance(
  name: string,
  open: () => Promise<Database<unknown>>,
): void {
  describe(`Database conformance: ${name}`, () => {
    let database: Database<unknown>;
    let db: Kysely<unknown>;

    beforeEach(async () => {
      database = await open();
      db = database.db;
    });

    afterEach(async () => {
      await database.close();
    });

    it('runs migrations in name order once, recorded in the service table', async () => {
      const migrations: MigrationSet = {
        '20260102000000-Second': {
          up: async (k: Kysely<unknown>) => {
            await k.schema.alterTable('widgets').addColumn('name', 'text').execute();
          },
        },
        '20260101000000-First': createTable('widgets'),
      };
      await expect(migrateToLatest(db, migrations, 'svc')).resolves.toEqual([
        '20260101000000-First',
        '20260102000000-Second',
      ]);
      await expect(migrateToLatest(db, migrations, 'svc')).resolves.toEqual([]);
      const tables = await tableNames(db);
      expect(tables).toEqual(
        expect.arrayContaining(['svc_migrations', 'svc_migrations_lock', 'widgets']),
      );
      const recorded = await sql<{
        name: string;
      }>`select name from svc_migrations order by name`.execute(db);
      expect(recorded.rows.map((r) => r.name)).toEqual([
        '20260101000000-First',
        '20260102000000-Second',
      ]);
    });

    it('keeps one migration table per service on a shared database', async () => {
      const same = '20260101000000-Init';
      await migrateToLatest(db, { [same]: createTable('a_things') }, 'service_a');
      await expect(
        migrateToLatest(db, { [same]: createTable('b_things') }, 'service_b'),
      ).resolves.toEqual([same]);
      expect(await tableNames(db)).toEqual(
        expect.arrayContaining([
          'a_things',
          'b_things',
          'service_a_migrations',
          'service_b_migrations',
        ]),
      );
    });

    it('names the failing migration and rolls the whole pending batch back', async () => {
      const migrations: MigrationSet = {
        '20260101000000-Good': createTable('good'),
        '20260102000000-Bad': {
          up: async (k: Kysely<unknown>) => {
            await k.schema.createTable('half').addColumn('id', 'text').execute();
            await sql`select * from no_such_table`.execute(k);
          },
        },
      };
      await expect(migrateToLatest(db, migrations, 'svc')).rejects.toThrow(/20260102000000-Bad/);
      // kysely runs the pending migrations in one transaction on PostgreSQL: all or nothing.
      const tables = await tableNames(db);
      expect(tables).not.toContain('good');
      expect(tables).not.toContain('half');
      const fixed = { ...migrations, '20260102000000-Bad': createTable('half') };
      await expect(migrateToLatest(db, fixed, 'svc')).resolves.toHaveLength(2);
      expect(await tableNames(db)).toEqual(expect.arrayContaining(['good', 'half']));
    });

    it('rolls a transaction back when its callback throws', async () => {
      await migrateToLatest(db, { '20260101000000-Rows': createTable('rows') }, 'svc');
      const rows = db as unknown as Kysely<{ rows: Row }>;
      await rows.insertInto('rows').values({ id: 'kept' }).execute();
      await expect(
        rows.transaction().execute(async (trx) => {
          await trx.insertInto('rows').values({ id: 'lost' }).execute();
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      const all = await rows.selectFrom('rows').select('id').orderBy('id').execute();
      expect(all).toEqual([{ id: 'kept' }]);
    });

    it('commits a transaction that succeeds and enforces constraints', async () => {
      await migrateToLatest(db, { '20260101000000-Rows': createTable('rows') }, 'svc');
      const rows = db as unknown as Kysely<{ rows: Row }>;
      await rows.transaction().execute(async (trx) => {
        await trx
          .insertInto('rows')
          .values([{ id: 'a' }, { id: 'b' }])
          .execute();
      });
      await expect(rows.insertInto('rows').values({ id: 'a' }).execute()).rejects.toBeDefined();
      const all = await rows.selectFrom('rows').select('id').orderBy('id').execute();
      expect(all).toEqual([{ id: 'a' }, { id: 'b' }]);
    });
  });
}
