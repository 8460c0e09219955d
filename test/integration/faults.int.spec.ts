import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAuditLog, type RunningAuditLog } from '@hcp/audit-log';
import { startEdge, type RunningEdge } from '@hcp/edge';
import {
  createDemoSandbox,
  demoCapabilitySettings,
  demoGrants,
  filesystemProvider,
  seedDemoGrants,
  type DemoSandbox,
} from '@hcp/embedded';
import { startGrantStore, type GrantStoreDb, type RunningGrantStore } from '@hcp/grant-store';
import {
  startHandleVault,
  VaultKeyring,
  type RunningHandleVault,
  type VaultDb,
} from '@hcp/handle-vault';
import {
  createAuditPublisher,
  mintToken,
  NatsBus,
  type AuditPublisher,
  type Database,
} from '@hcp/platform';
import {
  describeIntegration,
  integrationEnv,
  openScratchPostgres,
  restartNats,
  waitFor,
} from '@hcp/platform/testing';
import {
  DEFAULT_PROTOCOL_VERSIONS,
  startPolicyDecision,
  type RunningPolicyDecision,
} from '@hcp/policy-decision';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
// The edge's NATS session marks, as main.ts composes them (the package does not export them).
import { NatsSessionMarks } from '../../services/edge/src/protocol/nats-session-marks';

/**
 * The fault test of the one refusal path: the distributed stack (each service its own server on
 * PostgreSQL and NATS JetStream, talking gRPC over loopback, the edge with NATS session marks as
 * main.ts composes it) with the SDK's MCP Client driving calls through the real edge. For each
 * fault (policy-decision stopped, grant-store stopped, NATS restarted, handle-vault stopped) it
 * collects every refusal the agent received and every success, restores, and then asks the audit
 * REST API: every refusal has an entry with the same decision id and the agent's reason; nothing
 * the agent was told was refused shows up as an allow unless a failure outcome follows it for the
 * same decision; and the allowed neighbour (calls before the fault and after recovery) is served.
 *
 * Every call reads a file of its own, so an entry can be tied to its call by `resource_raw` even
 * when it carries a decision id the agent never saw (a late decision of a service that was cut
 * off). The problems are collected per fault and asserted at the end, so one run shows them all.
 */

const AGENT = 'alice';
const OPERATOR = 'demo-operator';
/** The PDP's bound on a cached grant set; short, so a stopped grant-store shows inside the window. */
const MAX_STALENESS_MS = 1500;
/** How long each fault lasts while calls are made (the grant-store one outlasts the cache bound). */
const FAULT_WINDOW_MS = 3000;
/** Spacing of the calls made during a fault. */
const CALL_EVERY_MS = 250;
/** Bound on the stack serving again after a fault is removed (gRPC reconnect backoff included). */
const RECOVERY_MS = 20_000;
/** Bound on one agent call. */
const CALL_TIMEOUT_MS = 5_000;
/** Files the agent may read, one per call. */
const FILES = 400;

/** What the agent got for one call. */
interface Outcome {
  readonly path: string;
  readonly phase: 'before' | 'during' | 'recovery' | 'after';
  readonly served: boolean;
  /** JSON-RPC error data of a refusal; absent fields mean the reply did not carry them. */
  readonly reason?: string;
  readonly decisionId?: string;
  /** The decision id of a served call (structuredContent). */
  readonly servedDecisionId?: string;
  /** What arrived instead of a typed refusal (transport error, untyped JSON-RPC error). */
  readonly error?: string;
}

/** One entry as GET /v1/audit/entries returns it (the fields read here). */
interface AuditRow {
  readonly seq: number;
  /** When the audited event happened (RFC 3339). */
  readonly time: string;
  readonly decision_id: string;
  readonly principal_id: string | null;
  readonly outcome: string;
  readonly reason: string;
  readonly check: string | null;
  readonly capability_id: string | null;
  readonly resource_raw: string | null;
  readonly source: string;
}

/** A service of the stack that the test can stop and start again on the same address. */
interface Restartable {
  readonly name: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

interface FaultStack {
  readonly sandbox: DemoSandbox;
  readonly edge: RunningEdge;
  readonly agent: Client;
  readonly auditUrl: string;
  readonly operatorToken: string;
  readonly pdp: Restartable;
  readonly grantStore: Restartable;
  readonly vault: Restartable;
  close(): Promise<void>;
}

const portOf = (url: string) => Number(url.slice(url.lastIndexOf(':') + 1));

async function startFaultStack(): Promise<FaultStack> {
  const { databaseUrl, natsUrl } = integrationEnv();
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), 'hcp-faults-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const sandbox = await createDemoSandbox(join(dir, 'sandbox'));
    await mkdir(join(sandbox.publicDir, 'faults'), { recursive: true });
    for (let i = 0; i < FILES; i++)
      await writeFile(join(sandbox.publicDir, 'faults', `${i}.txt`), `file ${i}\n`);

    const auth = {
      issuer: 'hcp-faults',
      audience: 'hcp',
      hs256Secret: randomBytes(32).toString('base64url'),
    };
    const bus = await NatsBus.connect({
      servers: natsUrl,
      name: 'hcp-fault-stack',
      reconnectTimeWaitMs: 100,
    });
    closers.push(() => bus.close());
    const database = async <DB>(): Promise<Database<DB>> => {
      const db = await openScratchPostgres<DB>(databaseUrl);
      closers.push(() => db.close());
      return db;
    };
    /** A service's own audit publisher, made anew on each start as a new process would. */
    const publisher = (source: string) => createAuditPublisher(bus, { source });

    const auditLog: RunningAuditLog = await startAuditLog({
      db: await database(),
      bus,
      httpPort: 0,
      verifier: auth,
    });
    closers.push(() => auditLog.close());

    /** Starts a service on port 0 first and on the same port after every stop. */
    const restartable = async <R extends { close(): Promise<void> }>(
      name: string,
      start: (port: number) => Promise<{ running: R; audit: AuditPublisher }>,
      url: (r: R) => string,
    ): Promise<{ service: Restartable; url: string }> => {
      let current: { running: R; audit: AuditPublisher } | undefined = await start(0);
      const address = url(current.running);
      const port = portOf(address);
      const stop = async () => {
        const was = current;
        current = undefined;
        if (was === undefined) return;
        await was.running.close();
        await was.audit.close();
      };
      closers.push(stop);
      return {
        url: address,
        service: {
          name,
          stop,
          start: async () => {
            if (current === undefined) current = await start(port);
          },
        },
      };
    };

    const gsDb = await database<GrantStoreDb>();
    const grantStore = await restartable<RunningGrantStore>(
      'grant-store',
      async (port) => {
        const audit = await publisher('grant-store');
        return {
          audit,
          running: await startGrantStore({ db: gsDb, bus, port, audit, verifier: auth }),
        };
      },
      (r) => r.url,
    );
    const vaultDb = await database<VaultDb>();
    const keys = VaultKeyring.parse(`k1:${randomBytes(32).toString('base64')}`, 'k1');
    const vault = await restartable<RunningHandleVault>(
      'handle-vault',
      async (port) => {
        const audit = await publisher('handle-vault');
        return { audit, running: await startHandleVault({ db: vaultDb, audit, keys, port }) };
      },
      (r) => r.url,
    );
    const pdp = await restartable<RunningPolicyDecision>(
      'policy-decision',
      async (port) => {
        const audit = await publisher('policy-decision');
        return {
          audit,
          running: await startPolicyDecision({
            grantStoreUrl: grantStore.url,
            bus,
            grpcPort: port,
            httpPort: null,
            maxStalenessMs: MAX_STALENESS_MS,
            fetchDeadlineMs: 500,
            protocolVersions: DEFAULT_PROTOCOL_VERSIONS,
            authzenToken: null,
            audit,
          }),
        };
      },
      (r) => r.grpcUrl,
    );

    const marks = await NatsSessionMarks.connect({
      servers: natsUrl,
      name: 'hcp-fault-edge-marks',
      bucket: `hcp_fault_marks_${randomBytes(4).toString('hex')}`,
      timeoutMs: 1000,
    });
    closers.push(() => marks.close());
    const edge = await startEdge({
      port: 0,
      grantStoreUrl: grantStore.url,
      pdpUrl: pdp.url,
      vaultUrl: vault.url,
      bus,
      verifier: auth,
      sessionKeys: [{ id: 'k1', secret: randomBytes(32).toString('base64url') }],
      sessionMarks: marks,
      providers: [filesystemProvider(sandbox)],
      capabilitySettings: demoCapabilitySettings(sandbox),
      relistIntervalMs: 0,
    });
    closers.push(() => edge.close());
    // Grants name capabilities, so they are written once the edge has pinned the tools.
    await seedDemoGrants(grantStore.url, demoGrants(sandbox));

    const mint = (id: string, kind: 'agent' | 'operator') =>
      mintToken({ id, kind }, { ...auth, ttlSec: 3600 });
    const transport = new StreamableHTTPClientTransport(new URL(edge.url), {
      requestInit: { headers: { authorization: `Bearer ${await mint(AGENT, 'agent')}` } },
    });
    const agent = new Client({ name: 'hcp-fault-agent', version: '1.0.0' });
    await agent.connect(transport);
    closers.push(() => agent.close());

    return {
      sandbox,
      edge,
      agent,
      auditUrl: auditLog.url,
      operatorToken: await mint(OPERATOR, 'operator'),
      pdp: pdp.service,
      grantStore: grantStore.service,
      vault: vault.service,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeIntegration('faults in the distributed stack: every refusal recorded, none allowed', () => {
  let s: FaultStack;
  let nextFile = 0;

  beforeAll(async () => {
    s = await startFaultStack();
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  }, 60_000);

  /** One agent call reading a file of its own; never throws. */
  const call = async (phase: Outcome['phase']): Promise<Outcome> => {
    const path = join(s.sandbox.publicDir, 'faults', `${nextFile++ % FILES}.txt`);
    try {
      const result = (await s.agent.callTool(
        { name: 'fs.read_text_file', arguments: { path } },
        undefined,
        { timeout: CALL_TIMEOUT_MS },
      )) as CallToolResult;
      const data = result.structuredContent as
        { handle?: string; toolError?: boolean; decisionId?: string } | undefined;
      if (typeof data?.handle === 'string' && data.toolError === false)
        return {
          path,
          phase,
          served: true,
          ...(data.decisionId === undefined ? {} : { servedDecisionId: data.decisionId }),
        };
      return { path, phase, served: false, error: `not a handle: ${JSON.stringify(result)}` };
    } catch (err: unknown) {
      if (err instanceof McpError) {
        const data = (err.data ?? {}) as { reason?: unknown; decisionId?: unknown };
        return {
          path,
          phase,
          served: false,
          ...(typeof data.reason === 'string' ? { reason: data.reason } : {}),
          ...(typeof data.decisionId === 'string' ? { decisionId: data.decisionId } : {}),
          ...(typeof data.reason === 'string' ? {} : { error: `${err.code} ${err.message}` }),
        };
      }
      // An HTTP-level refusal (e.g. 404 for a session the edge cannot confirm) reaches the SDK as a
      // transport error whose message holds the JSON-RPC body the edge sent: the agent got that.
      const body = rpcErrorIn(err);
      if (body !== undefined)
        return {
          path,
          phase,
          served: false,
          ...(body.reason === undefined ? { error: String(err) } : { reason: body.reason }),
          ...(body.decisionId === undefined ? {} : { decisionId: body.decisionId }),
        };
      return { path, phase, served: false, error: String(err) };
    }
  };

  /** Calls until one is served (bounded); every refused attempt is an outcome too. */
  const recover = async (outcomes: Outcome[]): Promise<void> => {
    const deadline = Date.now() + RECOVERY_MS;
    for (;;) {
      const o = await call('recovery');
      outcomes.push(o);
      if (o.served || Date.now() > deadline) return;
      await pause(250);
    }
  };

  const auditQuery = async (params: Record<string, string>): Promise<AuditRow[]> => {
    const rows: AuditRow[] = [];
    let cursor: string | undefined;
    do {
      const q = new URLSearchParams({ ...params, limit: '1000' });
      if (cursor !== undefined) q.set('cursor', cursor);
      const res = await fetch(`${s.auditUrl}/v1/audit/entries?${q.toString()}`, {
        headers: { authorization: `Bearer ${s.operatorToken}` },
      });
      if (res.status !== 200) throw new Error(`audit query: ${res.status} ${await res.text()}`);
      const page = (await res.json()) as { entries: AuditRow[]; next_cursor: string | null };
      rows.push(...page.entries);
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
    return rows;
  };

  /**
   * An allow entry with no failure outcome (deny) of the same decision after it. "After" is event
   * time (seq breaks ties): the chain keeps acceptance order except around a failed publish, where
   * an intent retried after NATS came back is stored behind the refusal that followed it.
   */
  const unansweredAllows = (rows: readonly AuditRow[]): AuditRow[] => {
    const at = (r: AuditRow) => Date.parse(r.time);
    const after = (a: AuditRow, b: AuditRow) => at(a) > at(b) || (at(a) === at(b) && a.seq > b.seq);
    return rows.filter(
      (r) =>
        r.outcome === 'allow' &&
        !rows.some(
          (later) =>
            later.decision_id === r.decision_id && later.outcome !== 'allow' && after(later, r),
        ),
    );
  };

  const describeRow = (r: AuditRow) =>
    `#${r.seq} ${r.time} ${r.source} ${r.outcome}/${r.reason} check=${r.check ?? '-'} decision=${r.decision_id}`;

  /**
   * What the audit log says against what the agent was told; returns the problems found. Waits for
   * ingestion: the entry of the last served call (published after every earlier one of its
   * publisher) and, per refusal, its entry up to a bound.
   */
  const audit = async (outcomes: readonly Outcome[]): Promise<string[]> => {
    const problems: string[] = [];
    const lastServed = [...outcomes].reverse().find((o) => o.served);
    if (lastServed !== undefined)
      await waitFor(
        `the entries of ${lastServed.path}`,
        async () =>
          (await auditQuery({ principal: AGENT })).some((r) => r.resource_raw === lastServed.path)
            ? true
            : undefined,
        20_000,
        100,
      ).catch(() => problems.push(`no entry at all for the served call ${lastServed.path}`));
    // Late entries (a cut-off service flushing its buffer) get a moment more to arrive.
    await pause(1000);

    // One bound for all the lookups, so a run with many unrecorded refusals still ends in time.
    const lookupDeadline = Date.now() + 10_000;
    for (const o of outcomes.filter((x) => !x.served)) {
      const what = `refused call (${o.phase}) ${o.path}`;
      if (o.reason === undefined || o.decisionId === undefined) {
        problems.push(
          `${what}: the agent got no typed refusal (reason=${o.reason ?? '-'}, decisionId=${o.decisionId ?? '-'}${o.error === undefined ? '' : `, ${o.error}`})`,
        );
        if (o.decisionId === undefined) continue;
      }
      const decisionId = o.decisionId;
      const rows = await waitFor(
        `an entry for ${decisionId}`,
        async () => {
          const r = await auditQuery({ decision_id: decisionId });
          return r.some((e) => e.outcome !== 'allow' && e.reason === o.reason) ? r : undefined;
        },
        Math.max(0, lookupDeadline - Date.now()),
        100,
      ).catch(() => auditQuery({ decision_id: decisionId }));
      if (rows.length === 0)
        problems.push(`${what}: no audit entry for ${decisionId} (${o.reason})`);
      else if (!rows.some((e) => e.outcome !== 'allow' && e.reason === o.reason))
        problems.push(
          `${what}: entries for ${decisionId} but none records the refusal ${o.reason}: ${rows.map(describeRow).join('; ')}`,
        );
      const allowed = unansweredAllows(rows);
      if (allowed.length > 0)
        problems.push(
          `${what}: allowed in the log with no failure outcome after it: ${allowed.map(describeRow).join('; ')}`,
        );
    }

    // Entries tied to a refused call by its resource but carrying another decision id (a late
    // decision nobody waited for) must not allow it either.
    const refusedPaths = new Set(outcomes.filter((o) => !o.served).map((o) => o.path));
    if (refusedPaths.size > 0) {
      const all = await auditQuery({ principal: AGENT });
      const byPath = all.filter((r) => r.resource_raw !== null && refusedPaths.has(r.resource_raw));
      for (const r of unansweredAllows(byPath)) {
        const o = outcomes.find((x) => x.path === r.resource_raw);
        if (o?.decisionId !== r.decision_id)
          problems.push(
            `refused call ${r.resource_raw} (told ${o?.reason ?? '-'} ${o?.decisionId ?? '-'}): an allow under another decision id: ${describeRow(r)}`,
          );
      }
    }

    // The allowed neighbour: served before the fault and again after recovery.
    for (const phase of ['before', 'after'] as const)
      for (const o of outcomes.filter((x) => x.phase === phase && !x.served))
        problems.push(
          `allowed neighbour (${phase} the fault) not served: ${o.path} ${o.reason ?? o.error ?? ''}`,
        );
    return problems;
  };

  /** Runs one fault: neighbours before, calls during, restore, recovery, neighbours after. */
  const underFault = async (
    inject: () => Promise<void>,
    restore: () => Promise<void>,
  ): Promise<{ outcomes: Outcome[]; problems: string[] }> => {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 2; i++) outcomes.push(await call('before'));
    await inject();
    const end = Date.now() + FAULT_WINDOW_MS;
    while (Date.now() < end) {
      outcomes.push(await call('during'));
      await pause(CALL_EVERY_MS);
    }
    await restore();
    await recover(outcomes);
    for (let i = 0; i < 2; i++) outcomes.push(await call('after'));
    const problems = await audit(outcomes);
    const refused = outcomes.filter((o) => !o.served);
    // The run's own account, so a failure reads as a report of what the agent saw.
    process.stderr.write(
      `[faults] ${outcomes.length} calls, ${outcomes.length - refused.length} served, ${refused.length} refused: ` +
        `${JSON.stringify(countBy(refused.map((o) => o.reason ?? `untyped(${o.error ?? ''})`)))}\n`,
    );
    return { outcomes, problems };
  };

  it('policy-decision stopped', async () => {
    const { outcomes, problems } = await underFault(
      () => s.pdp.stop(),
      () => s.pdp.start(),
    );
    expect(outcomes.some((o) => o.phase === 'during' && !o.served)).toBe(true);
    expect(problems).toEqual([]);
  }, 60_000);

  it('grant-store stopped', async () => {
    const { outcomes, problems } = await underFault(
      () => s.grantStore.stop(),
      () => s.grantStore.start(),
    );
    // Past the cache bound the PDP must refuse rather than decide on stale grants.
    expect(outcomes.some((o) => o.phase === 'during' && !o.served)).toBe(true);
    expect(problems).toEqual([]);
  }, 60_000);

  it('NATS restarted', async () => {
    let restarted: Promise<void> | undefined;
    const { problems } = await underFault(
      () => {
        // Calls go on while the server stops and starts again.
        restarted = restartNats();
        return Promise.resolve();
      },
      () => restarted ?? Promise.resolve(),
    );
    expect(problems).toEqual([]);
  }, 90_000);

  it('handle-vault stopped', async () => {
    const { outcomes, problems } = await underFault(
      () => s.vault.stop(),
      () => s.vault.start(),
    );
    const refused = outcomes.filter((o) => o.phase === 'during' && !o.served);
    expect(refused.length).toBeGreaterThan(0);
    // A vault that cannot be reached is named as such: never a size refusal (PAYLOAD_TOO_LARGE)
    // or an ownership one (HANDLE_NOT_OWNED), which would misname the fault in the audit.
    expect([...new Set(refused.map((o) => o.reason ?? `untyped(${o.error ?? ''})`))]).toEqual([
      'VAULT_UNAVAILABLE',
    ]);
    expect(problems).toEqual([]);
  }, 60_000);
});

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** The typed data of a JSON-RPC error carried in a transport error's message, if there is one. */
function rpcErrorIn(err: unknown): { reason?: string; decisionId?: string } | undefined {
  if (!(err instanceof StreamableHTTPError)) return undefined;
  const start = err.message.indexOf('{');
  if (start < 0) return undefined;
  try {
    const parsed = JSON.parse(err.message.slice(start)) as {
      error?: { data?: { reason?: unknown; decisionId?: unknown } };
    };
    const data = parsed.error?.data;
    if (data === undefined) return undefined;
    return {
      ...(typeof data.reason === 'string' ? { reason: data.reason } : {}),
      ...(typeof data.decisionId === 'string' ? { decisionId: data.decisionId } : {}),
    };
  } catch {
    return undefined;
  }
}
