import { status, type ServiceError } from '@grpc/grpc-js';
import { sql, type Kysely } from 'kysely';
import { newId, type AuditEntry } from '@hcp/core';
import { startAuditLog, type AuditDb, type RunningAuditLog } from '@hcp/audit-log';
import {
  startHandleVault,
  VaultKeyring,
  type RunningHandleVault,
  type VaultDb,
} from '@hcp/handle-vault';
import {
  callUnary,
  createAuditPublisher,
  createGrpcClient,
  InProcessBus,
  mintToken,
  NatsBus,
  openDatabase,
  reasonOfGrpcError,
  type AuditPublisher,
  type Database,
  type EventBus,
} from '@hcp/platform';
import {
  describeIntegration,
  integrationEnv,
  openScratchPostgres,
  restartNats,
  waitFor,
} from '@hcp/platform/testing';
import { vault } from '@hcp/proto';
import { tamperWithEntry } from '@hcp/audit-log/testing';

/**
 * The audit path across services: publishers -> JetStream (or the in-process bus) -> audit-log ->
 * PostgreSQL/PGlite -> REST; handle-vault owner checks recorded in that same audit.
 */

const AUTH = {
  issuer: 'hcp-int',
  audience: 'hcp',
  hs256Secret: 'integration-secret-0123456789abcdef',
};
const KEY = Buffer.alloc(32, 7).toString('base64');

interface Mode {
  readonly name: 'embedded' | 'distributed';
  database<DB>(): Promise<Database<DB>>;
  bus(): Promise<EventBus>;
  restartBus?: () => Promise<void>;
}

const MODES: Mode[] = [
  {
    name: 'embedded',
    database: () => openDatabase({ kind: 'pglite' }),
    bus: () => Promise.resolve(new InProcessBus()),
  },
  {
    name: 'distributed',
    database: <DB>() => openScratchPostgres<DB>(integrationEnv().databaseUrl),
    bus: () =>
      NatsBus.connect({
        servers: integrationEnv().natsUrl,
        name: 'hcp-int-audit',
        reconnectTimeWaitMs: 100,
      }),
    restartBus: restartNats,
  },
];

const entry = (i: number, run: string, over: Partial<AuditEntry> = {}): AuditEntry => ({
  id: `aud_${run}_${i}`,
  time: Date.now(),
  decisionId: `dec_${run}_${i}`,
  principalId: `p-${i % 3}`,
  endpointFamily: 'tools/call',
  capabilityId: 'fs/read_file',
  resourceRaw: `/data/app/${i}`,
  resourceCanonical: `/data/app/${i}`,
  outcome: i % 2 === 0 ? 'allow' : 'deny',
  reason: i % 2 === 0 ? 'ALLOWED' : 'NO_MATCHING_GRANT',
  handleIds: [],
  traceId: run,
  ...over,
});

for (const mode of MODES) {
  const suite = mode.name === 'distributed' ? describeIntegration : describe;
  suite(`audit-log and handle-vault (${mode.name})`, () => {
    let auditDb: Database<AuditDb>;
    let vaultDb: Database<VaultDb>;
    let bus: EventBus;
    let log: RunningAuditLog;
    let publisher: AuditPublisher;
    let operator: string;
    let agent: string;

    const startLog = async () => {
      log = await startAuditLog({ db: auditDb, bus, httpPort: 0, verifier: AUTH, ackWaitMs: 2000 });
    };
    const rest = async (path: string, token: string | null = operator) => {
      const res = await fetch(`${log.url}${path}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const entriesOf = async (query: string) => {
      const out: Record<string, unknown>[] = [];
      let cursor: string | null = null;
      do {
        const page = await rest(
          `/v1/audit/entries?${query}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        if (page.status !== 200) throw new Error(`query failed: ${JSON.stringify(page.body)}`);
        out.push(...(page.body['entries'] as Record<string, unknown>[]));
        cursor = (page.body['next_cursor'] as string | null) ?? null;
      } while (cursor);
      return out;
    };

    beforeAll(async () => {
      auditDb = await mode.database<AuditDb>();
      vaultDb = await mode.database<VaultDb>();
      bus = await mode.bus();
      await startLog();
      publisher = await createAuditPublisher(bus, { source: 'int-test', retryMs: 50 });
      operator = await mintToken({ id: 'ops', kind: 'operator' }, AUTH);
      agent = await mintToken({ id: 'alice', kind: 'agent' }, AUTH);
    });

    afterAll(async () => {
      await publisher.close();
      await log.close();
      await bus.close();
      await auditDb.close();
      await vaultDb.close();
    });

    it('stores exactly N entries, once each, across an audit-log restart and duplicate deliveries', async () => {
      const run = newId('aud').slice(-10);
      const N = 300;
      for (let i = 0; i < N; i++) {
        publisher.record(entry(i, run));
        if (i % 50 === 0) publisher.record(entry(i, run)); // the same event twice
        if (i === 100) await log.close();
        if (i === 200) await startLog();
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await publisher.flush(20_000);
      const stored = await waitFor(
        () => `${N} entries`,
        async () => {
          const got = await entriesOf(`trace_id=${run}`);
          return got.length >= N ? got : undefined;
        },
        30_000,
      );
      expect(stored).toHaveLength(N);
      expect(new Set(stored.map((e) => e['id'])).size).toBe(N);
      const verify = await rest('/v1/audit/verify');
      expect(verify.body).toMatchObject({ ok: true });
    });

    if (mode.restartBus !== undefined) {
      const restart = mode.restartBus;
      it('stores exactly N entries across a nats-server restart: the publisher buffers, nothing is lost or doubled', async () => {
        const run = newId('aud').slice(-10);
        const N = 200;
        for (let i = 0; i < N; i++) {
          publisher.record(entry(i, run));
          if (i === 80) await restart();
          if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
        }
        await publisher.flush(30_000);
        const stored = await waitFor(
          () => `${N} entries`,
          async () => {
            const got = await entriesOf(`trace_id=${run}`);
            return got.length >= N ? got : undefined;
          },
          30_000,
        );
        expect(new Set(stored.map((e) => e['id'])).size).toBe(N);
        expect(stored).toHaveLength(N);
        expect((await rest('/v1/audit/verify')).body).toMatchObject({ ok: true });
      });
    }

    it('names the tampered entry when a row is changed in the database', async () => {
      const run = newId('aud').slice(-10);
      for (let i = 0; i < 5; i++) publisher.record(entry(i, run));
      await publisher.flush(10_000);
      const stored = await waitFor(
        () => '5 entries',
        async () => {
          const got = await entriesOf(`trace_id=${run}`);
          return got.length >= 5 ? got : undefined;
        },
        15_000,
      );
      const victim = stored[2]!;
      expect((await rest('/v1/audit/verify')).body).toMatchObject({ ok: true });
      await tamperWithEntry(
        auditDb.db,
        victim['seq'] as number,
        'resource_canonical',
        '/etc/shadow',
      );
      const broken = await rest('/v1/audit/verify');
      expect(broken.body).toMatchObject({
        ok: false,
        first_broken: { seq: victim['seq'], id: victim['id'], reason: 'hash_mismatch' },
      });
      // Put it back so later tests see a whole chain again.
      await tamperWithEntry(
        auditDb.db,
        victim['seq'] as number,
        'resource_canonical',
        victim['resource_canonical'] as string,
      );
      expect((await rest('/v1/audit/verify')).body).toMatchObject({ ok: true });
    });

    it('guards the REST API: 401 without a token, 403 for an agent, 400 naming a bad parameter', async () => {
      expect((await rest('/v1/audit/entries', null)).status).toBe(401);
      expect((await rest('/v1/audit/entries', agent)).status).toBe(403);
      const bad = await rest('/v1/audit/entries?reason=NOT_A_REASON');
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain('reason');
      expect((await rest('/v1/audit/entries?limit=1')).status).toBe(200);
    });

    it('stores NUL characters and a 200 KB value exactly, and finds them by filter (real PostgreSQL when distributed)', async () => {
      const run = newId('aud').slice(-10);
      const big = `${'z'.repeat(200_000)}\u0000`;
      const withNul = entry(0, run, {
        principalId: `p\u0000${run}`,
        resourceRaw: 'a\u0000b',
        resourceCanonical: big,
        handleIds: ['h\u0000'],
      });
      // What the NUL entry's row stores, sent as a value of its own: a different principal.
      const lookalike = entry(1, run, { principalId: `p\\u0000${run}` });
      publisher.record(withNul);
      publisher.record(lookalike);
      await publisher.flush(10_000);
      await waitFor(
        () => 'both entries',
        async () => ((await entriesOf(`trace_id=${run}`)).length >= 2 ? true : undefined),
        15_000,
      );
      const byPrincipal = async (p: string) =>
        (await entriesOf(`principal=${encodeURIComponent(p)}`)).map((e) => e['id']);
      expect(await byPrincipal(`p\u0000${run}`)).toEqual([withNul.id]);
      expect(await byPrincipal(`p\\u0000${run}`)).toEqual([lookalike.id]);
      const got = await rest(`/v1/audit/entries/${withNul.id}`);
      expect(got.body).toMatchObject({
        principal_id: withNul.principalId,
        resource_raw: 'a\u0000b',
        handle_ids: ['h\u0000'],
      });
      expect(got.body['resource_canonical']).toBe(big);
      expect((await rest('/v1/audit/verify')).body).toMatchObject({ ok: true });
    });

    it('records each refusal of the REST API itself, found by the decision id in its reply', async () => {
      for (const [path, token, status, reason] of [
        ['/v1/audit/entries', null, 401, 'PRINCIPAL_UNAUTHENTICATED'],
        ['/v1/audit/entries', agent, 403, 'SCOPE_MISSING'],
        ['/v1/audit/nowhere', operator, 404, 'INPUT_INVALID'],
      ] as const) {
        const res = await rest(path, token);
        expect(res.status).toBe(status);
        expect(res.body).toMatchObject({ reason, decisionId: expect.stringMatching(/^dec_/) });
        const recorded = await entriesOf(`decision_id=${res.body['decisionId'] as string}`);
        expect(recorded).toEqual([
          expect.objectContaining({ reason, outcome: 'deny', source: 'audit-log' }),
        ]);
      }
    });

    describe('handle-vault', () => {
      let vaultSvc: RunningHandleVault;
      let client: vault.HandleVaultClient;
      let vaultAudit: AuditPublisher;
      const limits = { maxHandleBytes: 1024, maxPrincipalBytes: 4096 };

      beforeAll(async () => {
        vaultAudit = await createAuditPublisher(bus, { source: 'handle-vault', retryMs: 50 });
        vaultSvc = await startHandleVault({
          db: vaultDb,
          audit: vaultAudit,
          keys: VaultKeyring.parse(`k1:${KEY}`, 'k1'),
          port: 0,
          limits,
          sweepIntervalMs: 0,
        });
        client = createGrpcClient(vault.HandleVaultClient, vaultSvc.url);
      });
      afterAll(async () => {
        client.close();
        await vaultSvc.close();
        await vaultAudit.close();
      });

      const put = (owner: string, text: string, ttlSeconds = 3600) =>
        callUnary(
          client.put.bind(client),
          vault.PutRequest.fromPartial({
            ownerPrincipalId: owner,
            producingCapability: 'fs/read_file',
            labels: { provider: 'fs' },
            ttl: { seconds: ttlSeconds, nanos: 0 },
            payload: Buffer.from(text),
          }),
        );
      const failure = (p: Promise<unknown>) =>
        p.then(
          () => undefined,
          (e: unknown) => e as ServiceError,
        );

      it('serves the owner, refuses another principal, and records the refusal in the audit', async () => {
        const owner = `owner-${newId('aud').slice(-8)}`;
        const thief = `thief-${newId('aud').slice(-8)}`;
        const h = (await put(owner, 'quarterly numbers: 42\npassword=hunter2')).handle!;
        const peek = await callUnary(
          client.peek.bind(client),
          vault.PeekRequest.fromPartial({ principalId: owner, handleId: h.id, maxBytes: 0 }),
        );
        expect(peek.preview).toContain('quarterly numbers');
        expect(peek.preview).not.toContain('hunter2');
        const resolved = await callUnary(
          client.resolveForPipe.bind(client),
          vault.ResolveForPipeRequest.fromPartial({
            principalId: owner,
            handleId: h.id,
            decisionId: 'dec_int',
          }),
        );
        expect(Buffer.from(resolved.payload).toString()).toContain('hunter2');

        const denied = await failure(
          callUnary(
            client.peek.bind(client),
            vault.PeekRequest.fromPartial({ principalId: thief, handleId: h.id, maxBytes: 0 }),
          ),
        );
        expect(denied?.code).toBe(status.NOT_FOUND);
        expect(reasonOfGrpcError(denied!)?.reason).toBe('HANDLE_NOT_OWNED');
        const stolen = await failure(
          callUnary(
            client.resolveForPipe.bind(client),
            vault.ResolveForPipeRequest.fromPartial({
              principalId: thief,
              handleId: h.id,
              decisionId: 'dec_int2',
            }),
          ),
        );
        expect(reasonOfGrpcError(stolen!)?.reason).toBe('HANDLE_NOT_OWNED');

        await vaultAudit.flush(10_000);
        const attempts = await waitFor(
          () => 'the thief in the audit',
          async () => {
            const got = await entriesOf(`principal=${thief}&reason=HANDLE_NOT_OWNED`);
            return got.length >= 2 ? got : undefined;
          },
          15_000,
        );
        expect(attempts.map((e) => e['endpoint_family']).sort()).toEqual([
          'handle/peek',
          'handle/pipe',
        ]);
        expect(attempts.every((e) => (e['handle_ids'] as string[]).includes(h.id))).toBe(true);
        const ownerAllowed = await entriesOf(`principal=${owner}&outcome=allow`);
        expect(ownerAllowed).toHaveLength(2);
      });

      it('gives HANDLE_EXPIRED for an expired handle and PAYLOAD_TOO_LARGE for an oversized one, storing nothing', async () => {
        const owner = `owner-${newId('aud').slice(-8)}`;
        const h = (await put(owner, 'short-lived', 1)).handle!;
        await new Promise((r) => setTimeout(r, 1100));
        const expired = await failure(
          callUnary(
            client.peek.bind(client),
            vault.PeekRequest.fromPartial({ principalId: owner, handleId: h.id, maxBytes: 0 }),
          ),
        );
        expect([expired?.code, reasonOfGrpcError(expired!)?.reason]).toEqual([
          status.FAILED_PRECONDITION,
          'HANDLE_EXPIRED',
        ]);
        const big = await failure(put(owner, 'x'.repeat(limits.maxHandleBytes + 1)));
        expect(reasonOfGrpcError(big!)?.reason).toBe('PAYLOAD_TOO_LARGE');
        const db = vaultDb.db as unknown as Kysely<Record<string, { owner_principal_id: string }>>;
        const { rows } = await sql<{
          n: number;
        }>`select count(*)::int as n from handles where owner_principal_id = ${owner}`.execute(db);
        expect(rows[0]?.n).toBe(1); // only the expired one; the oversized payload was never stored
        // The allowed neighbour: exactly at the limit is accepted.
        expect((await put(owner, 'y'.repeat(limits.maxHandleBytes))).handle?.id).toMatch(/^hdl_/);
      });

      it('stores ciphertext: the plaintext does not occur in the stored row', async () => {
        const owner = `owner-${newId('aud').slice(-8)}`;
        const secret = `the-plaintext-marker-${newId('aud')}`;
        const h = (await put(owner, secret)).handle!;
        const db = vaultDb.db as unknown as Kysely<Record<string, unknown>>;
        const { rows } = await sql<
          Record<string, unknown>
        >`select * from handles where id = ${h.id}`.execute(db);
        expect(rows).toHaveLength(1);
        const bytes = Object.values(rows[0]!)
          .map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : String(v)))
          .join('|');
        expect(bytes).not.toContain(secret);
        expect(bytes).not.toContain(Buffer.from(secret).toString('base64'));
      });
    });
  });
}
