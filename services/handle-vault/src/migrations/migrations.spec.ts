import { sql } from 'kysely';
import { openDatabase, type Database } from '@hcp/platform';
import type { VaultDb } from '../database';
import { migrateHandleVault } from '../index';
import * as createHandles from './20261205120000-CreateHandles';
import * as putHandlesFunction from './20261220120000-PutHandlesFunction';

describe('handle-vault migrations (PGlite)', () => {
  let database: Database<VaultDb>;
  beforeAll(async () => {
    database = await openDatabase<VaultDb>({ kind: 'pglite' });
  });
  afterAll(() => database.close());

  it('applies once, is idempotent, and stores the payload as bytea only', async () => {
    expect(await migrateHandleVault(database.db)).toEqual([
      '20261205120000-CreateHandles',
      '20261220120000-PutHandlesFunction',
    ]);
    expect(await migrateHandleVault(database.db)).toEqual([]);
    const { rows } = await sql<{ column_name: string; data_type: string }>`
      select column_name, data_type from information_schema.columns
      where table_name = 'handles' order by ordinal_position`.execute(database.db);
    expect(Object.fromEntries(rows.map((r) => [r.column_name, r.data_type]))).toEqual({
      id: 'text',
      owner_principal_id: 'text',
      producing_capability: 'text',
      labels: 'jsonb',
      created_at: 'timestamp with time zone',
      expires_at: 'timestamp with time zone',
      size_bytes: 'integer',
      key_id: 'text',
      iv: 'bytea',
      ciphertext: 'bytea',
      auth_tag: 'bytea',
    });
  });

  it('refuses an IV or tag of the wrong length', async () => {
    const insert = (iv: number, tag: number) =>
      sql`insert into handles values ('h', 'p', 'c/t', '{}', now(), now(), 0, 'k',
            ${Buffer.alloc(iv)}, ${Buffer.alloc(0)}, ${Buffer.alloc(tag)})`.execute(database.db);
    await expect(insert(8, 16)).rejects.toThrow(/handles_iv_check/);
    await expect(insert(12, 4)).rejects.toThrow(/handles_auth_tag_check/);
    await insert(12, 16);
  });

  it('refuses arrays of different lengths in handle_vault_put, storing nothing', async () => {
    const call = (sizes: number[]) =>
      sql`select * from handle_vault_put(array['h2'], array['p'], array['c/t'], array['{}'],
            array[0]::bigint[], array[1]::bigint[], ${sizes}::integer[], array['k'],
            array[${Buffer.alloc(12)}::bytea], array[${Buffer.alloc(16)}::bytea], ${Buffer.alloc(0)},
            array[0], 100)`.execute(database.db);
    await expect(call([0, 0])).rejects.toThrow(/arrays differ in length/);
    const ok = await call([0]);
    expect(ok.rows).toEqual([
      { put_index: 1, used_bytes: expect.anything() as unknown, stored: true },
    ]);
  });

  it('rolls back with down', async () => {
    await putHandlesFunction.down(database.db as never);
    const fn = await sql<{ n: number }>`
      select count(*)::int as n from pg_proc where proname = 'handle_vault_put'`.execute(
      database.db,
    );
    expect(fn.rows[0]?.n).toBe(0);
    await createHandles.down(database.db as never);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from information_schema.tables where table_name = 'handles'`.execute(
      database.db,
    );
    expect(rows[0]?.n).toBe(0);
  });
});
