import { sql, type Kysely } from 'kysely';
import { openDatabase, type Database } from '@hcp/platform';
import type { GrantStoreDb } from '../database';
import { migrateGrantStore } from '../index';
import * as initial from './20261121120000-InitialSchema';
import * as pendingIndex from './20261205120000-PendingApprovalsIndex';
import * as constraints from './20261212120000-GrantArgumentConstraints';
import * as resourceArguments from './20261219120000-CapabilityResourceArguments';

describe('grant-store migrations (PGlite)', () => {
  let database: Database<GrantStoreDb>;
  beforeAll(async () => {
    database = await openDatabase<GrantStoreDb>({ kind: 'pglite' });
  });
  afterAll(() => database.close());

  it('migrates to the latest once and is idempotent', async () => {
    await expect(migrateGrantStore(database.db)).resolves.toEqual([
      '20261121120000-InitialSchema',
      '20261205120000-PendingApprovalsIndex',
      '20261212120000-GrantArgumentConstraints',
      '20261219120000-CapabilityResourceArguments',
    ]);
    await expect(migrateGrantStore(database.db)).resolves.toEqual([]);
    const { rows } = await sql<{ table_name: string }>`
      select table_name from information_schema.tables
      where table_schema = 'public' order by table_name`.execute(database.db);
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        'approvals',
        'capabilities',
        'grant_store_migrations',
        'grants',
        'manifest_revision',
        'principal_revisions',
      ]) as unknown,
    );
    const manifest = await database.db
      .selectFrom('manifest_revision')
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(Number(manifest.revision)).toBe(0);
  });

  it('enforces single use and the closed state set in the schema itself', async () => {
    const at = new Date();
    const row = {
      id: 'apr_schema',
      principal_id: 'p',
      capability_id: 'c/t',
      binding_digest: 'd',
      summary: '',
      created_at: at,
      expires_at: at,
      decided_at: null,
      decided_by: null,
    };
    await expect(
      database.db
        .insertInto('approvals')
        .values({ ...row, state: 'pending', consumed_at: at })
        .execute(),
    ).rejects.toThrow(/approvals_consumed_check/);
    await expect(
      database.db
        .insertInto('approvals')
        .values({ ...row, state: 'maybe' as 'pending', consumed_at: null })
        .execute(),
    ).rejects.toThrow(/approvals_state_check/);
  });

  it('gives grants written before argument constraints an empty list (as wide as before)', async () => {
    await sql`insert into grants (id, principal_id, capabilities, resource_patterns, scopes, created_at, revision)
      values ('grt_old', 'p', '["fs/read_file"]', '[]', '[]', now(), 1)`.execute(database.db);
    const row = await database.db
      .selectFrom('grants')
      .select('argument_constraints')
      .where('id', '=', 'grt_old')
      .executeTakeFirstOrThrow();
    expect(row.argument_constraints).toEqual([]);
  });

  it('turns a stored single resource argument into a one-element list, its role from the effects', async () => {
    const old = await openDatabase<GrantStoreDb>({ kind: 'pglite' });
    try {
      const db = old.db as unknown as Kysely<unknown>;
      for (const m of [initial, pendingIndex, constraints]) await m.up(db);
      const capability = (id: string, effects: string, argument: string | null) =>
        sql`insert into capabilities (id, provider, tool, effects, risk, approval_required,
          required_scopes, resource_argument, definition_digest, revision, updated_at)
          values (${id}, ${id.split('/')[0]}, ${id.split('/')[1]}, ${effects}::jsonb, 'low', false,
          '[]', ${argument}::jsonb, null, 1, now())`.execute(db);
      await capability('fs/read_file', '["read"]', '{"name":"path","canonicalizer":"path"}');
      await capability(
        'fs/write_file',
        '["read","write"]',
        '{"name":"path","canonicalizer":"path"}',
      );
      await capability('http/fetch', '["network","read"]', '{"name":"url","canonicalizer":"url"}');
      await capability('shell/exec', '["execute"]', null);
      await resourceArguments.up(db);
      const { rows } = await sql<{ id: string; resource_arguments: unknown }>`
        select id, resource_arguments from capabilities order by id`.execute(db);
      expect(rows).toEqual([
        {
          id: 'fs/read_file',
          resource_arguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
        },
        {
          id: 'fs/write_file',
          resource_arguments: [{ name: 'path', canonicalizer: 'path', role: 'write' }],
        },
        {
          id: 'http/fetch',
          resource_arguments: [{ name: 'url', canonicalizer: 'url', role: 'fetch' }],
        },
        { id: 'shell/exec', resource_arguments: [] },
      ]);
      await resourceArguments.down(db);
      const back = await sql<{ id: string; resource_argument: unknown }>`
        select id, resource_argument from capabilities where id in ('fs/read_file', 'shell/exec')
        order by id`.execute(db);
      expect(back.rows).toEqual([
        { id: 'fs/read_file', resource_argument: { name: 'path', canonicalizer: 'path' } },
        { id: 'shell/exec', resource_argument: null },
      ]);
    } finally {
      await old.close();
    }
  });

  it('down drops every table', async () => {
    await initial.down(database.db as unknown as Kysely<unknown>);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from information_schema.tables
      where table_schema = 'public' and table_name in ('grants', 'capabilities', 'approvals', 'principal_revisions', 'manifest_revision')`.execute(
      database.db,
    );
    expect(rows[0]?.n).toBe(0);
  });
});
