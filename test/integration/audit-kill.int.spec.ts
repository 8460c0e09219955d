import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { AuditEntry } from '@hcp/core';
import { AUDIT_DURABLE } from '@hcp/audit-log';
import { startGrantStore, type GrantStoreDb, type RunningGrantStore } from '@hcp/grant-store';
import {
  AUDIT_STREAM,
  callUnary,
  createAuditPublisher,
  createGrpcClient,
  findFreePort,
  mintToken,
  NatsBus,
  openDatabase,
  type AuditPublisher,
  type Database,
} from '@hcp/platform';
import {
  createScratchDatabase,
  describeIntegration,
  integrationEnv,
  openScratchPostgres,
  waitFor,
  type ScratchDatabase,
} from '@hcp/platform/testing';
import { CAPABILITIES, activeSession, call, path } from '@hcp/policy/testing';
import {
  capabilityToProto,
  decideRequestToProto,
  decisionFromProto,
  grants,
  policy,
} from '@hcp/proto';
import { consumerState } from './harness/nats-monitor';
import { readAuditStream, type AuditStreamReader } from './harness/audit-stream';
import { serviceProcess, type ServiceProcess } from './harness/service-process';

/**
 * Kill mid-batch (ADR 0005, "How the invariant is shown to hold"): audit-log and policy-decision
 * run as processes of their own on the integration PostgreSQL and NATS JetStream, and are
 * SIGKILLed under load of Decides and of entries a publisher in this process awaits
 * (`recordDurable`).
 * - audit-log, deterministically: this test holds the chain head's row lock, so audit-log's
 *   append blocks with its messages delivered and not acknowledged; it is killed there, the lock
 *   released, and it is started again (the redelivery must not lose or double an entry).
 * - policy-decision: killed at random points of the Decide load, three times, restarted each time.
 * Then: every entry whose recordDurable resolved is in the log; every entry in the HCP_AUDIT
 * stream is in the log exactly once; verify passes with no seq gap. Decisions the PDP answered
 * whose entries died in its buffer are the known gap (ADR 0005 §2): counted and printed, not
 * failed on. The allowed neighbour: without a kill, a PDP stopped by SIGTERM loses none.
 */

const AUTH = {
  issuer: 'hcp-audit-kill',
  audience: 'hcp',
  hs256Secret: randomBytes(32).toString('base64url'),
};
/** Redelivery delay of audit-log's consumer: short, so the killed process's batch comes back soon. */
const ACK_WAIT_MS = 2000;
/** Principals the Decides are spread over (each granted the read; the PDP caches their grants). */
const PRINCIPALS = 4;
/** Concurrent Decide loops and recordDurable loops, and the pause each takes between calls. */
const DECIDE_WORKERS = 3;
const PUBLISH_WORKERS = 2;
const PAUSE_MS = 5;
/** PDP kills, each after a random stretch of load in [MIN, MIN + SPREAD) ms. */
const PDP_KILLS = 3;
const KILL_AFTER_MIN_MS = 300;
const KILL_AFTER_SPREAD_MS = 900;
/** Bound on audit-log catching up with the stream once the load stops. */
const CATCH_UP_MS = 40_000;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Decides and awaited entries, run in loops until stopped; every outcome is kept. */
interface Load {
  /** Decision ids of the Decides that were answered. */
  readonly answered: Set<string>;
  /** Entry ids whose recordDurable resolved. */
  readonly durable: Set<string>;
  readonly failedDecides: number;
  readonly failedDurables: number;
  stop(): Promise<void>;
}

describeIntegration('kill mid-batch: audit-log and policy-decision SIGKILLed under load', () => {
  const run = randomBytes(5).toString('hex');
  let bus: NatsBus;
  let auditScratch: ScratchDatabase;
  /** This test's own connections to audit-log's database (reads, and the head lock). */
  let auditDb: Database<unknown>;
  let gsDb: Database<GrantStoreDb>;
  let grantStore: RunningGrantStore;
  let auditLog: ServiceProcess;
  let pdp: ServiceProcess;
  let pdpClient: policy.PolicyDecisionClient;
  let publisher: AuditPublisher;
  let reader: AuditStreamReader;
  let auditUrl: string;
  let operator: string;
  let entrySeq = 0;
  let decideSeq = 0;

  const db = (): Kysely<unknown> => auditDb.db;

  /** One Decide for one of the granted principals; resolves with the decision id. */
  const decide = async (): Promise<string> => {
    const principal = `kill-${run}-${decideSeq++ % PRINCIPALS}`;
    const res = await callUnary(
      pdpClient.decide.bind(pdpClient),
      decideRequestToProto({
        principal: { id: principal, kind: 'agent' },
        session: activeSession(principal),
        call: call('fs/read_file', path('/data/app/a.txt'), { path: '/data/app/a.txt' }),
      }),
      { deadlineMs: 2000 },
    );
    return decisionFromProto(res.decision!).id;
  };

  const entry = (tag: string): AuditEntry => {
    const i = entrySeq++;
    return {
      id: `aud_kill_${run}_${tag}_${i}`,
      time: Date.now(),
      decisionId: `dec_kill_${run}_${tag}_${i}`,
      principalId: `kill-${run}-publisher`,
      endpointFamily: 'tools/call',
      capabilityId: 'fs/read_file',
      resourceRaw: `/data/app/${i}`,
      resourceCanonical: `/data/app/${i}`,
      outcome: 'allow',
      reason: 'ALLOWED',
      handleIds: [],
      traceId: `kill-${run}`,
    };
  };

  const startLoad = (options: { decides: number; publishes: number }): Load => {
    let running = true;
    const answered = new Set<string>();
    const durable = new Set<string>();
    let failedDecides = 0;
    let failedDurables = 0;
    const decideLoop = async () => {
      while (running) {
        try {
          answered.add(await decide());
        } catch {
          failedDecides++; // the PDP is down or restarting: not answered, nothing to account for
          await pause(20);
        }
        await pause(PAUSE_MS);
      }
    };
    const publishLoop = async () => {
      while (running) {
        const e = entry('load');
        try {
          await publisher.recordDurable(e, 20_000);
          durable.add(e.id);
        } catch {
          failedDurables++; // not acknowledged: the test may not count on it
        }
        await pause(PAUSE_MS);
      }
    };
    const loops = [
      ...Array.from({ length: options.decides }, decideLoop),
      ...Array.from({ length: options.publishes }, publishLoop),
    ];
    return {
      answered,
      durable,
      get failedDecides() {
        return failedDecides;
      },
      get failedDurables() {
        return failedDurables;
      },
      stop: async () => {
        running = false;
        await Promise.all(loops);
      },
    };
  };

  /** Every entry id in the log with how often it occurs, plus the chain's shape. */
  const readLog = async () => {
    const { rows } = await sql<{
      id: string;
      n: number;
    }>`select id, count(*)::int as n from audit_entries group by id`.execute(db());
    const ids = new Map(rows.map((r) => [r.id, r.n]));
    const shape = (
      await sql<{ count: number; max_seq: number | null; head_seq: number }>`
        select (select count(*)::int from audit_entries) as count,
               (select max(seq)::int from audit_entries) as max_seq,
               (select seq::int from audit_chain_head where id = 1) as head_seq`.execute(db())
    ).rows[0]!;
    return { ids, ...shape };
  };

  const verify = async () => {
    const res = await fetch(`${auditUrl}/v1/audit/verify`, {
      headers: { authorization: `Bearer ${operator}` },
    });
    return (await res.json()) as Record<string, unknown>;
  };

  /** How many answered Decides have their decision's entry in the log (matched by decision id). */
  const decisionsLogged = async (answered: ReadonlySet<string>) => {
    const { rows } = await sql<{ decision_id: string }>`
      select decision_id from audit_entries where source = 'policy-decision'`.execute(db());
    const inLog = new Set(rows.map((r) => r.decision_id));
    const logged = [...answered].filter((id) => inLog.has(id)).length;
    return { answered: answered.size, logged, lost: answered.size - logged };
  };

  /** Waits until audit-log has stored this entry (it appends in stream order). */
  const untilLogged = (id: string, timeoutMs = CATCH_UP_MS) =>
    waitFor(
      () => `${id} in audit-log's chain\n${auditLog.output()}`,
      async () => ((await readLog()).ids.has(id) ? true : undefined),
      timeoutMs,
      200,
    );

  beforeAll(async () => {
    const { databaseUrl, natsUrl } = integrationEnv();
    bus = await NatsBus.connect({
      servers: natsUrl,
      name: 'hcp-audit-kill',
      reconnectTimeWaitMs: 100,
    });
    publisher = await createAuditPublisher(bus, { source: 'audit-kill-test', retryMs: 50 });
    reader = await readAuditStream(bus);
    operator = await mintToken({ id: 'ops', kind: 'operator' }, AUTH);

    gsDb = await openScratchPostgres<GrantStoreDb>(databaseUrl);
    grantStore = await startGrantStore({ db: gsDb, bus, port: 0 });
    const gs = createGrpcClient(grants.GrantStoreClient, grantStore.url);
    try {
      for (const c of CAPABILITIES)
        await callUnary(gs.putCapability.bind(gs), { capability: capabilityToProto(c) });
      for (let i = 0; i < PRINCIPALS; i++)
        await callUnary(gs.createGrant.bind(gs), {
          principalId: `kill-${run}-${i}`,
          capabilities: ['fs/read_file'],
          resourcePatterns: [{ pattern: { $case: 'pathPrefix', value: '/data/app' } }],
          scopes: ['fs:read'],
          expiresAt: undefined,
          argumentConstraints: [],
        });
    } finally {
      gs.close();
    }

    auditScratch = await createScratchDatabase(databaseUrl);
    auditDb = await openDatabase<unknown>({ kind: 'postgres', url: auditScratch.url });
    const [auditPort, pdpPort, pdpHttpPort] = await Promise.all([
      findFreePort(),
      findFreePort(),
      findFreePort(),
    ]);
    auditUrl = `http://127.0.0.1:${auditPort}`;
    const common = { HCP_NATS_URL: natsUrl, HCP_LOG_LEVEL: 'warn', NODE_ENV: 'production' };
    auditLog = serviceProcess({
      name: 'audit-log',
      env: {
        ...common,
        HCP_AUDIT_HTTP_PORT: String(auditPort),
        HCP_DATABASE_URL: auditScratch.url,
        HCP_AUTH_ISSUER: AUTH.issuer,
        HCP_AUTH_AUDIENCE: AUTH.audience,
        HCP_AUTH_HS256_SECRET: AUTH.hs256Secret,
        HCP_AUDIT_ACK_WAIT_MS: String(ACK_WAIT_MS),
      },
      ready: async () => (await fetch(`${auditUrl}/readyz`)).status === 200,
    });
    pdpClient = createGrpcClient(policy.PolicyDecisionClient, `127.0.0.1:${pdpPort}`, {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 200,
    });
    pdp = serviceProcess({
      name: 'policy-decision',
      env: {
        ...common,
        HCP_PDP_GRPC_PORT: String(pdpPort),
        HCP_PDP_HTTP_PORT: String(pdpHttpPort),
        HCP_GRANT_STORE_URL: grantStore.url,
      },
      // A readiness Decide is a decision like any other; the loads count their own.
      ready: async () => (await decide()) !== '',
    });
    await Promise.all([auditLog.start(), pdp.start()]);
  }, 90_000);

  afterAll(async () => {
    await pdp?.kill().catch(() => undefined);
    await auditLog?.stop().catch(() => auditLog.kill());
    pdpClient?.close();
    await reader?.close().catch(() => undefined);
    await publisher?.close().catch(() => undefined);
    await grantStore?.close().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await gsDb?.close().catch(() => undefined);
    await auditDb?.close().catch(() => undefined);
    await auditScratch?.drop().catch(() => undefined);
  }, 60_000);

  it('loses no acknowledged entry and doubles none when audit-log dies mid-batch and the PDP dies at random', async () => {
    const start = entry('start');
    await publisher.recordDurable(start);
    const load = startLoad({ decides: DECIDE_WORKERS, publishes: PUBLISH_WORKERS });

    // audit-log: its append blocks on the head row this transaction holds, with its batch
    // delivered and not acknowledged; it is killed there.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db()
      .transaction()
      .execute(async (trx) => {
        await sql`select seq from audit_chain_head where id = 1 for update`.execute(trx);
        locked();
        await released;
      });
    await isLocked;
    const blocked = await waitFor(
      'audit-log blocked on the chain head lock',
      async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(db());
        return rows[0]!.n > 0 ? rows[0]!.n : undefined;
      },
      20_000,
      20,
    );
    await pause(200); // more load piles up behind the blocked batch
    const beforeKill = await readLog();
    // nats-server's own account: audit-log's batch is delivered and not acknowledged.
    const atKill = await waitFor(
      'audit-log holding delivered, unacknowledged messages',
      async () => {
        const state = await consumerState(AUDIT_STREAM, AUDIT_DURABLE);
        return state !== undefined && state.ackPending > 0 ? state : undefined;
      },
      5000,
      50,
    );
    await auditLog.kill();
    release();
    await holder;
    await auditLog.start();

    // policy-decision: killed at random points of the Decide load.
    for (let k = 0; k < PDP_KILLS; k++) {
      await pause(KILL_AFTER_MIN_MS + Math.random() * KILL_AFTER_SPREAD_MS);
      await pdp.kill();
      await pdp.start();
    }
    await pause(500);
    await load.stop();
    // The last incarnation is stopped gracefully: close flushes its buffer.
    await pdp.stop();

    const end = entry('end');
    await publisher.recordDurable(end);
    await reader.waitForEntry(end.id, CATCH_UP_MS);
    await untilLogged(end.id);
    // Once the end is in the chain, audit-log has acknowledged everything before it.
    const drained = await waitFor(
      'audit-log acknowledging the whole stream',
      async () => {
        const state = await consumerState(AUDIT_STREAM, AUDIT_DURABLE);
        return state !== undefined && state.ackPending === 0 && state.pending === 0
          ? state
          : undefined;
      },
      10_000,
      100,
    ).catch(() => consumerState(AUDIT_STREAM, AUDIT_DURABLE));

    const messages = reader.messages();
    const from = messages.findIndex((m) => m.entryIds.includes(start.id));
    const to = messages.findIndex((m) => m.entryIds.includes(end.id));
    expect(from).toBeGreaterThanOrEqual(0);
    const window = messages.slice(from, to + 1);
    const streamIds = new Set(window.flatMap((m) => m.entryIds));
    // audit-log appends in stream order, but give stragglers of a redelivery a moment.
    const log = await waitFor(
      'every stream entry in the log',
      async () => {
        const l = await readLog();
        return [...streamIds].every((id) => l.ids.has(id)) ? l : undefined;
      },
      10_000,
      200,
    ).catch(() => readLog());

    const missingDurable = [...load.durable].filter((id) => !log.ids.has(id));
    const missingFromStream = [...streamIds].filter((id) => !log.ids.has(id));
    const doubled = [...log.ids].filter(([, n]) => n > 1).map(([id]) => id);
    const undecodable = window.filter((m) => m.undecodable !== undefined);
    const { answered, logged, lost } = await decisionsLogged(load.answered);
    const result = await verify();

    console.log(
      `[audit-kill] decides answered=${answered} logged=${logged} lost=${lost} ` +
        `(PDP SIGKILLed ${PDP_KILLS}x; ${load.failedDecides} Decides failed while it was down); ` +
        `recordDurable acked=${load.durable.size} missing=${missingDurable.length} (${load.failedDurables} not acked); ` +
        `audit-log killed with ${blocked} backend(s) blocked on the head, ${atKill.ackPending} message(s) delivered and not acked, at ${beforeKill.count} entries; ` +
        `stream messages=${window.length} entries=${streamIds.size} missing=${missingFromStream.length}; ` +
        `log entries=${log.count} head=${log.head_seq}`,
    );

    expect(answered).toBeGreaterThan(0);
    expect(load.durable.size).toBeGreaterThan(0);
    expect(missingDurable).toEqual([]);
    expect(missingFromStream).toEqual([]);
    expect(undecodable).toEqual([]);
    expect(doubled).toEqual([]);
    // No seq gap: seqs 1..count, and the head row at the last one.
    expect({ maxSeq: log.max_seq, head: log.head_seq }).toEqual({
      maxSeq: log.count,
      head: log.count,
    });
    expect(result).toMatchObject({ ok: true });
    expect({ ackPending: drained?.ackPending, pending: drained?.pending }).toEqual({
      ackPending: 0,
      pending: 0,
    });
  }, 90_000);

  it('the allowed neighbour: with no kill, a PDP stopped by SIGTERM has every answered decision logged', async () => {
    await pdp.start();
    const load = startLoad({ decides: DECIDE_WORKERS, publishes: 0 });
    await pause(2000);
    await load.stop();
    await pdp.stop(); // close flushes the publisher's buffer
    const end = entry('neighbour-end');
    await publisher.recordDurable(end);
    await untilLogged(end.id);
    const { answered, logged, lost } = await decisionsLogged(load.answered);
    console.log(
      `[audit-kill] neighbour (SIGTERM, no kill): decides answered=${answered} logged=${logged} lost=${lost}`,
    );
    expect(answered).toBeGreaterThan(0);
    expect(load.failedDecides).toBe(0);
    expect(lost).toBe(0);
    expect(await verify()).toMatchObject({ ok: true });
  }, 60_000);
});
