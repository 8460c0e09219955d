import { sql } from 'kysely';
import { callUnary, ConfigError, createGrpcClient, type Database } from '@hcp/platform';
import { vault } from '@hcp/proto';
import type { VaultDb } from './database';
import { startHandleVault, VaultKeyring, type RunningHandleVault } from './index';
import { freshDatabase, keyMaterial, RecordingAudit, testClock } from './testing/harness';

// startHandleVault as an operator meets it: restarts over one database with a changing
// keyring (the rotation procedure), the boot checks, and the periodic sweeper.

describe('startHandleVault', () => {
  const keys = keyMaterial('k1', 'k2');
  const clock = testClock();
  const audit = new RecordingAudit();
  let database: Database<VaultDb>;

  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(() => database.close());

  /** Starts a vault over the shared database, runs `fn` with a client, and closes both. */
  async function withVault<T>(
    keyring: VaultKeyring,
    fn: (c: vault.HandleVaultClient, v: RunningHandleVault) => Promise<T>,
    sweepIntervalMs = 0,
  ): Promise<T> {
    const running = await startHandleVault({
      db: database,
      audit,
      keys: keyring,
      port: 0,
      clock,
      sweepIntervalMs,
    });
    const client = createGrpcClient(vault.HandleVaultClient, running.url);
    try {
      return await fn(client, running);
    } finally {
      client.close();
      await running.close();
    }
  }
  const put = (c: vault.HandleVaultClient, text: string, ttlSeconds = 3600) =>
    callUnary(
      c.put.bind(c),
      vault.PutRequest.fromPartial({
        ownerPrincipalId: 'agent-1',
        producingCapability: 'fs/read_file',
        ttl: { seconds: ttlSeconds, nanos: 0 },
        payload: Buffer.from(text),
      }),
    ).then((r) => r.handle!.id);
  const resolve = (c: vault.HandleVaultClient, handleId: string) =>
    callUnary(
      c.resolveForPipe.bind(c),
      vault.ResolveForPipeRequest.fromPartial({
        principalId: 'agent-1',
        handleId,
        decisionId: 'dec_1',
      }),
    ).then((r) => Buffer.from(r.payload).toString());
  const keyIds = async () =>
    (
      await sql<{ key_id: string }>`select distinct key_id from handles order by key_id`.execute(
        database.db,
      )
    ).rows.map((r) => r.key_id);

  it('rotates keys across restarts: add, switch, rotateKeys, remove', async () => {
    const k1 = VaultKeyring.of({ k1: keys['k1']! }, 'k1');
    const both = VaultKeyring.of({ k1: keys['k1']!, k2: keys['k2']! }, 'k2');
    const k2 = VaultKeyring.of({ k2: keys['k2']! }, 'k2');

    const first = await withVault(k1, (c) => put(c, 'sealed under k1'));
    expect(await keyIds()).toEqual(['k1']);

    // Removing k1 too early is refused at boot, naming the variable, before anything listens.
    await expect(withVault(k2, () => Promise.resolve())).rejects.toThrow(ConfigError);
    await expect(withVault(k2, () => Promise.resolve())).rejects.toThrow(/HCP_VAULT_KEYS/);

    const second = await withVault(both, async (c, v) => {
      expect(await resolve(c, first)).toBe('sealed under k1');
      const id = await put(c, 'sealed under k2');
      expect(await keyIds()).toEqual(['k1', 'k2']);
      expect(await v.rotateKeys()).toBe(1);
      expect(await keyIds()).toEqual(['k2']);
      return id;
    });

    await withVault(k2, async (c) => {
      expect(await resolve(c, first)).toBe('sealed under k1');
      expect(await resolve(c, second)).toBe('sealed under k2');
    });
  });

  it('refuses inconsistent limits at boot', async () => {
    await expect(
      startHandleVault({
        db: database,
        audit,
        keys: VaultKeyring.of({ k2: keys['k2']! }, 'k2'),
        port: 0,
        limits: { maxHandleBytes: 10, maxPrincipalBytes: 5 },
      }),
    ).rejects.toThrow(/limits.maxPrincipalBytes: must be at least maxHandleBytes/);
  });

  it('purges expired rows on its interval and stops the sweeper on close', async () => {
    await sql`truncate handles`.execute(database.db);
    const keyring = VaultKeyring.of({ k2: keys['k2']! }, 'k2');
    await withVault(
      keyring,
      async (c) => {
        await put(c, 'short', 1);
        await put(c, 'long', 3600);
        clock.advance(1000 + 60 * 60 * 1000);
        // The sweeper, not the test, must purge the expired row.
        const until = Date.now() + 5000;
        while ((await count()) !== 1) {
          if (Date.now() > until) throw new Error('the sweeper did not purge the expired row');
          await new Promise((r) => setTimeout(r, 10));
        }
        expect(await count()).toBe(1);
      },
      10,
    );
    // After close no sweep runs: the other row, expired now, stays.
    clock.advance(10 * 60 * 60 * 1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(await count()).toBe(1);
  });

  const count = async () =>
    Number(
      (await sql<{ n: number }>`select count(*)::int as n from handles`.execute(database.db))
        .rows[0]?.n,
    );
});
