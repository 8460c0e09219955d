import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { RunningEdge } from '@hcp/edge';
import {
  ECHO_DESCRIPTION,
  ORIGIN_HELLO_TEXT,
  ORIGIN_SECRET_TEXT,
  PUBLIC_TEST_HOST,
  fetchProviderRequired,
  type EchoMcpServer,
  type RecordingOrigin,
} from '@hcp/edge/testing';
import type { DemoSandbox, EmbeddedStack } from '@hcp/embedded';
import { reasonOfGrpcError } from '@hcp/platform';
import { describeIntegration, integrationEnv, waitFor } from '@hcp/platform/testing';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  PRINCIPALS,
  RUG_PULL_DESCRIPTION,
  SECRET_FILE_TEXT,
  OTHER_SUPPORTED_VERSION,
  connect,
  startAttackWorld,
  type AttackWorld,
  type AttackWorldOptions,
  type AuditRow,
  type RawResponse,
  type RecordingForwarder,
  type RefusalData,
  type StackKind,
} from '@hcp/bench/attacks/stack';

/**
 * The edge end to end: the SDK's MCP Client against the real edge (startEdge), the real upstream
 * servers (@modelcontextprotocol/server-filesystem over a demo sandbox, an MCP server over
 * Streamable HTTP as a network-egress target, mcp-server-fetch behind the egress proxy) and the
 * whole service stack, once embedded (PGlite, in-process bus) and once distributed (PostgreSQL,
 * NATS JetStream). For each invariant: the attack, its allowed neighbour, the attacker's success
 * condition checked outside the edge (disk, the origin's request log, what the egress target
 * received, the vault), and for every denial the JSON-RPC error's reason code and the audit
 * entry the audit REST API returns for its decision id.
 */

// The fetch server (PyPI) is a separate install. CI must run its cases; elsewhere they skip loudly.
const FETCH_AVAILABLE = fetchProviderRequired(
  'the fetch (URL, I3) cases of the edge end-to-end suite',
);
const itFetch = FETCH_AVAILABLE ? it : it.skip;

const ALICE = PRINCIPALS.alice;
const BOB = PRINCIPALS.bob;
const OPERATOR = PRINCIPALS.operator;

interface Mode {
  readonly name: StackKind;
  /** The world's options (the distributed one reads the integration servers' addresses). */
  options(): AttackWorldOptions;
}

const MODES: Mode[] = [
  { name: 'embedded', options: () => ({ kind: 'embedded', fetch: FETCH_AVAILABLE }) },
  {
    name: 'distributed',
    options: () => ({
      kind: 'distributed',
      databaseUrl: integrationEnv().databaseUrl,
      natsUrl: integrationEnv().natsUrl,
      fetch: FETCH_AVAILABLE,
    }),
  },
];

interface World {
  readonly world: AttackWorld;
  readonly stack: EmbeddedStack;
  readonly edge: RunningEdge;
  readonly sandbox: DemoSandbox;
  readonly echo: EchoMcpServer;
  readonly tap: RecordingForwarder;
  readonly origin: RecordingOrigin | undefined;
  readonly tokens: AttackWorld['tokens'];
  readonly alice: Client;
  readonly bob: Client;
  readonly aliceSession: string;
  close(): Promise<void>;
}

/** The shared attack world with an hcp-mode edge and alice's and bob's SDK clients connected. */
async function startWorld(mode: Mode): Promise<World> {
  const world = await startAttackWorld(mode.options());
  const closers: (() => Promise<void>)[] = [() => world.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const run = await world.startEdge();
    closers.push(() => run.close());
    const alice = await connect(run.url, world.tokens.alice);
    closers.push(() => alice.client.close());
    const bob = await connect(run.url, world.tokens.bob);
    closers.push(() => bob.client.close());
    return {
      world,
      stack: world.stack,
      edge: run.edge,
      sandbox: world.sandbox,
      echo: world.echo,
      tap: world.tap,
      origin: world.origin,
      tokens: world.tokens,
      alice: alice.client,
      bob: bob.client,
      aliceSession: alice.transport.sessionId!,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

for (const mode of MODES) {
  const suite = mode.name === 'distributed' ? describeIntegration : describe;
  suite(`the edge end to end (${mode.name})`, () => {
    let w: World;

    beforeAll(async () => {
      w = await startWorld(mode);
    }, 120_000);
    afterAll(async () => {
      await w?.close();
    });

    // ---------- helpers (they read `w`, so they live inside the suite) ----------

    const structured = (r: CallToolResult) =>
      r.structuredContent as { handle: string; toolError: boolean; decisionId: string };
    const textOf = (r: CallToolResult) =>
      (r.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('');

    /** A call that must be allowed: its handle (the output stays in the vault). */
    const allowed = async (
      client: Client,
      name: string,
      args: Record<string, unknown>,
      meta?: Record<string, unknown>,
    ): Promise<string> => {
      const result = (await client.callTool({
        name,
        arguments: args,
        ...(meta === undefined ? {} : { _meta: meta }),
      })) as CallToolResult;
      const s = structured(result);
      expect(s.handle).toMatch(/^hdl_/);
      expect(s.toolError).toBe(false);
      return s.handle;
    };

    /** A call that must be refused: the JSON-RPC error's data. */
    const refused = async (
      client: Client,
      name: string,
      args: Record<string, unknown>,
      meta?: Record<string, unknown>,
    ): Promise<RefusalData> => {
      const err = await client
        .callTool({ name, arguments: args, ...(meta === undefined ? {} : { _meta: meta }) })
        .then(
          (r) => new Error(`${name} was not refused: ${JSON.stringify(r)}`),
          (e: unknown) => e,
        );
      if (!(err instanceof McpError)) throw err;
      return err.data as RefusalData;
    };

    const peek = async (client: Client, handle: string): Promise<string> =>
      textOf(
        (await client.callTool({ name: 'hcp_peek', arguments: { handle } })) as CallToolResult,
      );

    /**
     * Checks a refusal: the reason code (and invariant), a decision id, and the deny entry with the
     * same reason that the audit REST API returns for that decision id (ingestion is asynchronous).
     */
    const audited = async (
      data: RefusalData,
      reason: string,
      invariant?: string,
    ): Promise<AuditRow> => {
      expect(data.reason).toBe(reason);
      if (invariant !== undefined) expect(data.invariant).toBe(invariant);
      const decisionId = data.decisionId;
      expect(decisionId).toMatch(/^dec_/);
      return waitFor(
        `an audit entry deny/${reason} for ${decisionId}`,
        async () =>
          (await w.world.auditRows(decisionId!)).find(
            (e) => e.outcome === 'deny' && e.reason === reason,
          ),
        15_000,
        50,
      );
    };

    /** One raw JSON-RPC POST: for attacks on headers and bodies the SDK client would not send. */
    const rpc = (body: unknown, headers: Record<string, string>, contentType?: string) =>
      w.world.rpc(w.edge.url, body, headers, contentType);
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const listTools = { jsonrpc: '2.0', id: 11, method: 'tools/list' };
    const initialize = (protocolVersion: string) => ({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    const toolNames = async (client: Client) =>
      (await client.listTools()).tools.map((t) => t.name).sort();

    // ---------- I3: canonical resources ----------

    describe('I3 canonical paths', () => {
      it('reads a file inside the root (through a handle, peek shows it), and through an in-root symlink', async () => {
        const handle = await allowed(w.alice, 'fs.read_text_file', {
          path: join(w.sandbox.publicDir, 'hello.txt'),
        });
        expect(await peek(w.alice, handle)).toContain('Hello from the HCP sandbox.');
        const viaLink = await allowed(w.alice, 'fs.read_text_file', {
          path: join(w.sandbox.publicDir, 'notes-link.md'),
        });
        expect(await peek(w.alice, viaLink)).toContain('# Notes');
      });

      it.each([
        [
          'a ../ escape',
          (s: DemoSandbox) => `${s.publicDir}/../../../../../../../../etc/hostname`,
          () => '/etc/hostname',
        ],
        [
          'the sibling-prefix root_evil',
          (s: DemoSandbox) => `${s.root}_evil/loot.txt`,
          (s: DemoSandbox) => join(s.evilSibling, 'loot.txt'),
        ],
        [
          'a symlink in public/ pointing outside the root',
          (s: DemoSandbox) => `${s.publicDir}/escape.txt`,
          (s: DemoSandbox) => join(s.evilSibling, 'loot.txt'),
        ],
      ])(
        'denies %s with RESOURCE_DENIED, audited, no content leaked',
        async (_what, pathOf, realOf) => {
          const err = await w.alice
            .callTool({ name: 'fs.read_text_file', arguments: { path: pathOf(w.sandbox) } })
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(err).toBeInstanceOf(McpError);
          expect(JSON.stringify(err)).not.toContain('outside the sandbox');
          const row = await audited((err as McpError).data as RefusalData, 'RESOURCE_DENIED', 'I3');
          // Decided on the resolved path, not on the string the caller sent.
          expect(row).toMatchObject({
            principal_id: ALICE,
            capability_id: 'fs/read_text_file',
            resource_canonical: realOf(w.sandbox),
            rule: 'path.outside_roots',
          });
        },
      );
    });

    describe('I3 canonical URLs (mcp-server-fetch behind the egress proxy)', () => {
      beforeEach(() => {
        if (w.origin === undefined) return;
        (w.origin.requests as unknown[]).length = 0;
        (w.origin.dialled as unknown[]).length = 0;
      });

      itFetch(
        'fetches the granted public host: the origin saw it, peek shows the page',
        async () => {
          const handle = await allowed(w.alice, 'fetch.fetch', {
            url: `http://${PUBLIC_TEST_HOST}/hello`,
          });
          expect(await peek(w.alice, handle)).toContain(ORIGIN_HELLO_TEXT);
          expect(w.origin!.requests.map((r) => [r.path, r.host])).toEqual([
            ['/hello', PUBLIC_TEST_HOST],
          ]);
        },
      );

      // Each is refused by the edge's URL canonicaliser, before the provider runs; `rule` says why.
      const privateUrls: [string, (port: number) => string, string][] = [
        [
          'cloud metadata 169.254.169.254',
          () => 'http://169.254.169.254/latest/meta-data/',
          'url.private_address',
        ],
        ['loopback 127.0.0.1', (port) => `http://127.0.0.1:${port}/secret`, 'url.private_address'],
        ['hex loopback 0x7f000001', () => 'http://0x7f000001/', 'url.numeric_host'],
        [
          'IPv4-mapped loopback [::ffff:127.0.0.1]',
          () => 'http://[::ffff:127.0.0.1]/',
          'url.ipv4_mapped',
        ],
      ];
      for (const [what, urlOf, rule] of privateUrls) {
        itFetch(`denies ${what} before any request leaves (${rule})`, async () => {
          const data = await refused(w.alice, 'fetch.fetch', { url: urlOf(w.origin!.port) });
          const row = await audited(data, 'RESOURCE_DENIED', 'I3');
          expect(row).toMatchObject({ principal_id: ALICE, capability_id: 'fetch/fetch', rule });
          expect(w.origin!.requests).toEqual([]);
          expect(w.origin!.dialled).toEqual([]);
        });
      }

      itFetch(
        'refuses a redirect from the public host to loopback at the egress proxy',
        async () => {
          const secret = `http://127.0.0.1:${w.origin!.port}/secret`;
          const start = `http://${PUBLIC_TEST_HOST}/redirect?to=${encodeURIComponent(secret)}`;
          const err = await w.alice
            .callTool({ name: 'fetch.fetch', arguments: { url: start } })
            .then(
              (r) => new Error(`not refused: ${JSON.stringify(r)}`),
              (e: unknown) => e,
            );
          expect(err).toBeInstanceOf(McpError);
          expect((err as McpError).message).not.toContain(ORIGIN_SECRET_TEXT);
          expect((err as McpError).message).toContain('url.private_address');
          await audited((err as McpError).data as RefusalData, 'RESOURCE_DENIED', 'I3');
          // The first hop went out; the hop to loopback never arrived.
          expect(w.origin!.requests.map((r) => r.path)).toEqual([
            `/redirect?to=${encodeURIComponent(secret)}`,
          ]);
        },
      );
    });

    // ---------- I4: principal binding ----------

    describe('I4 principal binding', () => {
      it("peeks an own handle; bob peeking alice's handle is HANDLE_NOT_OWNED, audited", async () => {
        const handle = await allowed(w.alice, 'fs.read_text_file', {
          path: join(w.sandbox.publicDir, 'notes.md'),
        });
        expect(await peek(w.alice, handle)).toContain('# Notes');
        const data = await refused(w.bob, 'hcp_peek', { handle });
        expect(JSON.stringify(data)).not.toContain('Notes');
        await audited(data, 'HANDLE_NOT_OWNED', 'I4');
      });

      it("refuses bob on alice's Mcp-Session-Id (SESSION_FOREIGN), audited; alice keeps using it", async () => {
        for (const body of [
          listTools,
          {
            jsonrpc: '2.0',
            id: 12,
            method: 'tools/call',
            params: {
              name: 'fs.read_text_file',
              arguments: { path: join(w.sandbox.secretsDir, 'api-token.txt') },
            },
          },
        ]) {
          const stolen = await rpc(body, {
            ...bearer(w.tokens.bob),
            'mcp-session-id': w.aliceSession,
            'mcp-protocol-version': '2025-11-25',
          });
          expect(stolen.status).toBe(404);
          expect(JSON.stringify(stolen.json)).not.toContain(SECRET_FILE_TEXT);
          const row = await audited(stolen.json!.error!.data!, 'SESSION_FOREIGN', 'I4');
          expect(row.principal_id).toBe(BOB);
        }
        const own = await rpc(listTools, {
          ...bearer(w.tokens.alice),
          'mcp-session-id': w.aliceSession,
          'mcp-protocol-version': '2025-11-25',
        });
        expect(own.status).toBe(200);
        expect(own.json?.error).toBeUndefined();
      });
    });

    // ---------- I5: scoped capability invocation ----------

    describe('I5 scoped grants and discovery filtering', () => {
      it("allows alice's read; bob (list_directory only) is denied read_text_file, which his tools/list hides", async () => {
        const path = join(w.sandbox.publicDir, 'hello.txt');
        await allowed(w.alice, 'fs.read_text_file', { path });
        const data = await refused(w.bob, 'fs.read_text_file', { path });
        await audited(data, 'NO_MATCHING_GRANT', 'I5');
        const bobs = await toolNames(w.bob);
        expect(bobs).toContain('fs.list_directory');
        expect(bobs).not.toContain('fs.read_text_file');
        expect(bobs).not.toContain('fs.write_file');
        expect(await toolNames(w.alice)).toEqual(
          expect.arrayContaining(['fs.read_text_file', 'fs.write_file', 'egress.echo']),
        );
        // Bob's neighbour: what he is granted works.
        await allowed(w.bob, 'fs.list_directory', { path: w.sandbox.publicDir });
      });

      it('holds an argument constraint: a matching argument is allowed, a breaking one ARGUMENT_NOT_GRANTED', async () => {
        const handle = await allowed(w.bob, 'egress.echo', { text: 'hello from bob' });
        expect(await peek(w.bob, handle)).toBe('hello from bob');
        const data = await refused(w.bob, 'egress.echo', { text: 'HELLO FROM BOB' });
        await audited(data, 'ARGUMENT_NOT_GRANTED', 'I5');
        expect(w.tap.bodies.some((b) => b.includes('HELLO FROM BOB'))).toBe(false);
      });
    });

    // ---------- I6: source-and-target data flow ----------

    describe('I6 data flow through hcp_pipe', () => {
      it('pipes a public file into the egress target; a secrets/ file is refused and never reaches it', async () => {
        const pub = await allowed(w.alice, 'fs.read_text_file', {
          path: join(w.sandbox.publicDir, 'hello.txt'),
        });
        const piped = (await w.alice.callTool({
          name: 'hcp_pipe',
          arguments: { handle: pub, tool: 'egress.echo', argument: 'text' },
        })) as CallToolResult;
        const out = structured(piped).handle;
        expect(await peek(w.alice, out)).toContain('Hello from the HCP sandbox.');
        expect(w.tap.bodies.some((b) => b.includes('Hello from the HCP sandbox.'))).toBe(true);

        const secret = await allowed(w.alice, 'fs.read_text_file', {
          path: join(w.sandbox.secretsDir, 'api-token.txt'),
        });
        const peeked = (await w.alice.callTool({
          name: 'hcp_peek',
          arguments: { handle: secret, maxBytes: 1 },
        })) as CallToolResult;
        expect((peeked.structuredContent as { labels: Record<string, string> }).labels).toEqual(
          expect.objectContaining({ sensitivity: 'secret' }),
        );
        const data = await refused(w.alice, 'hcp_pipe', {
          handle: secret,
          tool: 'egress.echo',
          argument: 'text',
        });
        await audited(data, 'PIPE_TARGET_DENIED', 'I6');
        expect(w.tap.bodies.some((b) => b.includes(SECRET_FILE_TEXT))).toBe(false);
      });
    });

    // ---------- I2: grant-backed approval ----------

    describe('I2 approvals', () => {
      const decide = (token: string, approvalId: string) =>
        w.world.decideApproval(token, approvalId);

      it('writes once with an operator approval bound to the call; confirm:true, an agent approver, a mismatch and a replay are refused', async () => {
        const target = join(w.sandbox.publicDir, 'out', `approved-${mode.name}.txt`);
        const args = { path: target, content: 'written with an approval\n' };

        const first = await refused(w.alice, 'fs.write_file', args);
        await audited(first, 'APPROVAL_REQUIRED', 'I2');
        const approvalId = first.approvalRequestId;
        expect(approvalId).toMatch(/^apr_/);

        // The agent saying "confirmed" is not an approval: `confirm` is no argument of the pinned
        // schema, so the call is refused as input before any decision, and nothing is filed.
        const confirmed = await refused(w.alice, 'fs.write_file', { ...args, confirm: true });
        await audited(confirmed, 'INPUT_INVALID');
        expect(confirmed.approvalRequestId).toBeUndefined();
        expect(existsSync(target)).toBe(false);

        // An agent token cannot approve, not even its own call.
        const byAgent = await decide(w.tokens.alice, approvalId!).then(
          () => undefined,
          (e: unknown) => e as ServiceError,
        );
        expect(byAgent?.code).toBe(status.PERMISSION_DENIED);
        expect(reasonOfGrpcError(byAgent!)?.reason).toBe('PRINCIPAL_UNAUTHENTICATED');
        const notYet = await refused(w.alice, 'fs.write_file', args, {
          'hcp/approvalId': approvalId,
        });
        // Still pending: presenting it changes nothing.
        await audited(notYet, 'APPROVAL_REQUIRED', 'I2');
        expect(notYet.approvalRequestId).toBeUndefined();
        expect(existsSync(target)).toBe(false);

        // The operator approves.
        const decided = await decide(w.tokens.operator, approvalId!);
        expect(decided.approval?.decidedBy).toBe(OPERATOR);

        // Bound to the exact call: other content is APPROVAL_MISMATCH; another principal has no grant.
        const other = await refused(
          w.alice,
          'fs.write_file',
          { ...args, content: 'something else\n' },
          { 'hcp/approvalId': approvalId },
        );
        await audited(other, 'APPROVAL_MISMATCH', 'I2');
        const otherPath = await refused(
          w.alice,
          'fs.write_file',
          { ...args, path: join(w.sandbox.publicDir, 'out', 'elsewhere.txt') },
          { 'hcp/approvalId': approvalId },
        );
        await audited(otherPath, 'APPROVAL_MISMATCH', 'I2');
        const byBob = await refused(w.bob, 'fs.write_file', args, {
          'hcp/approvalId': approvalId,
        });
        await audited(byBob, 'NO_MATCHING_GRANT', 'I5');
        expect(existsSync(target)).toBe(false);
        expect(existsSync(join(w.sandbox.publicDir, 'out', 'elsewhere.txt'))).toBe(false);

        // The approved call runs once.
        await allowed(w.alice, 'fs.write_file', args, { 'hcp/approvalId': approvalId });
        expect(await readFile(target, 'utf8')).toBe(args.content);
        await unlink(target);

        // Replaying the approval is refused, and nothing is written again.
        const replay = await refused(w.alice, 'fs.write_file', args, {
          'hcp/approvalId': approvalId,
        });
        await audited(replay, 'APPROVAL_CONSUMED', 'I2');
        expect(existsSync(target)).toBe(false);
      });
    });

    // ---------- I1: metadata non-authority ----------

    describe('I1 pinned tool definitions', () => {
      it('refuses a rug-pulled tool (TOOL_DEFINITION_CHANGED) and hides it, until the pinned definition is back', async () => {
        await allowed(w.alice, 'egress.echo', { text: 'before' });
        w.echo.setEchoDescription(RUG_PULL_DESCRIPTION);
        try {
          await w.edge.relist();
          const data = await refused(w.alice, 'egress.echo', { text: 'after' });
          await audited(data, 'TOOL_DEFINITION_CHANGED', 'I1');
          expect(await toolNames(w.alice)).not.toContain('egress.echo');
          expect(w.tap.bodies.some((b) => b.includes('"after"'))).toBe(false);
        } finally {
          w.echo.setEchoDescription(ECHO_DESCRIPTION);
          await w.edge.relist();
        }
        // Neighbour: the pinned definition is served again, so the tool is callable again.
        await allowed(w.alice, 'egress.echo', { text: 'restored' });
        expect(await toolNames(w.alice)).toContain('egress.echo');
      });

      it('never lists nor calls a tool the upstream lists but the manifest does not name (CAPABILITY_UNKNOWN)', async () => {
        expect(w.edge.listings.get('egress/slow')).toBeDefined();
        expect(await toolNames(w.alice)).not.toContain('egress.slow');
        const data = await refused(w.alice, 'egress.slow', { ms: 1 });
        await audited(data, 'CAPABILITY_UNKNOWN', 'I1');
        expect(w.tap.bodies.some((b) => b.includes('"slow"') && b.includes('tools/call'))).toBe(
          false,
        );
      });
    });

    // ---------- I8: explicit protocol state ----------

    describe('I8 protocol state', () => {
      it('refuses each broken protocol state with its reason, audited; a proper session works', async () => {
        const alice = bearer(w.tokens.alice);
        const cases: [string, Promise<RawResponse>, string][] = [
          ['tools/list before initialize', rpc(listTools, alice), 'SESSION_NOT_INITIALIZED'],
          [
            'an unsupported MCP-Protocol-Version header',
            rpc(listTools, {
              ...alice,
              'mcp-session-id': w.aliceSession,
              'mcp-protocol-version': '1999-01-01',
            }),
            'PROTOCOL_VERSION_UNSUPPORTED',
          ],
          [
            'initialize asking for an unsupported version',
            rpc(initialize('1999-01-01'), alice),
            'PROTOCOL_VERSION_UNSUPPORTED',
          ],
          [
            'a header disagreeing with the negotiated version',
            rpc(listTools, {
              ...alice,
              'mcp-session-id': w.aliceSession,
              'mcp-protocol-version': OTHER_SUPPORTED_VERSION,
            }),
            'PROTOCOL_VERSION_MISMATCH',
          ],
          [
            'an unknown session id',
            rpc(listTools, {
              ...alice,
              'mcp-session-id': `forged-${randomBytes(16).toString('hex')}`,
              'mcp-protocol-version': '2025-11-25',
            }),
            'SESSION_UNKNOWN',
          ],
        ];
        for (const [what, pending, reason] of cases) {
          const res = await pending;
          const data = res.json?.error?.data;
          if (data?.reason !== reason)
            throw new Error(
              `${what}: expected ${reason}, got ${res.status} ${JSON.stringify(res.json)}`,
            );
          await audited(data, reason, 'I8');
        }
        // Neighbour: the same session with the negotiated version header works.
        const ok = await rpc(listTools, {
          ...alice,
          'mcp-session-id': w.aliceSession,
          'mcp-protocol-version': '2025-11-25',
        });
        expect(ok.status).toBe(200);
        expect((ok.json?.result as { tools: unknown[] }).tools.length).toBeGreaterThan(2);
      });

      it('refuses a session after DELETE ended it, audited', async () => {
        const { client, transport } = await connect(w.edge.url, w.tokens.alice);
        const sessionId = transport.sessionId!;
        expect((await client.listTools()).tools.length).toBeGreaterThan(2);
        await transport.terminateSession();
        await client.close();
        const after = await rpc(listTools, {
          ...bearer(w.tokens.alice),
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-11-25',
        });
        expect(after.status).toBe(404);
        await audited(after.json!.error!.data!, 'SESSION_UNKNOWN', 'I8');
      });
    });

    // ---------- protocol robustness ----------

    describe('protocol robustness', () => {
      it('answers malformed JSON, non-JSON-RPC, text/plain and a 2 MiB body with protocol errors, and keeps serving', async () => {
        const alice = bearer(w.tokens.alice);
        const parse = await rpc('{"jsonrpc":', alice);
        expect([parse.status, parse.json?.error?.code]).toEqual([400, -32700]);
        const notRpc = await rpc({ hello: 'world' }, alice);
        expect([notRpc.status, notRpc.json?.error?.code]).toEqual([400, -32600]);
        const textPlain = await rpc(JSON.stringify(listTools), alice, 'text/plain');
        expect(textPlain.status).toBe(415);
        const big = await rpc(
          { ...initialize('2025-11-25'), pad: 'x'.repeat(2 * 1024 * 1024) },
          alice,
        );
        expect(big.status).toBe(413);
        expect(big.json?.error?.data?.reason).toBe('INPUT_INVALID');
        // The edge still serves: a real call through the existing SDK session, and a new session.
        const handle = await allowed(w.alice, 'fs.read_text_file', {
          path: join(w.sandbox.publicDir, 'hello.txt'),
        });
        expect(await peek(w.alice, handle)).toContain('Hello');
        const fresh = await connect(w.edge.url, w.tokens.bob);
        expect(await toolNames(fresh.client)).toContain('fs.list_directory');
        await fresh.client.close();
      });
    });
  });
}
