import 'reflect-metadata';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import fc from 'fast-check';
import {
  REASON_CODES,
  type AuditEntry,
  type Capability,
  type Grant,
  type Principal,
} from '@hcp/core';
import { createTokenVerifier, mintToken } from '@hcp/platform';
import type { CallOutcome, PeekOutcome } from '../call/call.service';
import { ProtocolState } from '../protocol/protocol-state';
import { InMemorySessionMarks, SignedSessionStore } from '../protocol/session-store';
import { listingOf } from '../providers/provider-registry';
import { EdgeHttpModule } from './edge-http.module';
import { McpEndpoint } from './mcp-endpoint';
import { ListingCache } from './tool-catalog';

/**
 * Fuzzes `/mcp` of the real McpEndpoint (Nest route, SDK server, protocol state, signed sessions;
 * fake call path and stores) with generated requests: random and wrong-typed JSON-RPC, batches,
 * huge and deep bodies, bad headers and content types, with and without a valid token and
 * session. Every reply that refuses must carry a reason code of the closed set, none may be 5xx.
 */

const RUNS = 2000;
const AUTH = {
  issuer: 'hcp-fuzz',
  audience: 'hcp',
  hs256Secret: 'edge-fuzz-spec-secret-0123456789abcdef',
};
const DENIAL_REASONS = new Set<string>(REASON_CODES.filter((c) => c !== 'ALLOWED'));
const alice: Principal = { id: 'alice', kind: 'agent' };
const bob: Principal = { id: 'bob', kind: 'agent' };

interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

interface World {
  readonly port: number;
  readonly audit: AuditEntry[];
  readonly tokens: Record<'alice' | 'bob' | 'expired' | 'foreignKey', string>;
  readonly sessions: Record<'alice' | 'bob', string>;
  /** A fresh initialized session (DELETE ends the session it names, so it gets its own). */
  open(token: string): Promise<string>;
  close(): Promise<void>;
}

async function startWorld(): Promise<World> {
  const listings = new ListingCache();
  const listing = listingOf('up', [
    { name: 'read', description: 'Reads.', inputSchema: { type: 'object', properties: {} } },
  ]);
  listings.update(listing);
  const capability: Capability = {
    id: 'up/read',
    provider: 'up',
    tool: 'read',
    effects: ['read'],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: [],
    resourceArguments: [],
    definitionDigest: listing.capabilities[0]!.digest,
  };
  const grant: Grant = {
    id: 'g1',
    principalId: 'alice',
    capabilities: ['up/read'],
    resourcePatterns: [],
    scopes: [],
    createdAt: 1,
  };
  const audit: AuditEntry[] = [];
  const refused = (reason: 'NO_MATCHING_GRANT' | 'HANDLE_NOT_OWNED') => ({
    kind: 'refused' as const,
    reason,
    message: 'refused',
    decisionId: 'dec_fake',
  });
  const endpoint = new McpEndpoint({
    verifier: createTokenVerifier(AUTH),
    protocol: new ProtocolState({
      store: new SignedSessionStore({
        keys: [{ id: 'k1', secret: 'fuzz-session-key-0123456789abcdef0123' }],
        marks: new InMemorySessionMarks(),
      }),
    }),
    calls: {
      callTool: (input): Promise<CallOutcome> =>
        Promise.resolve(
          input.capabilityId === 'up/read' && input.principal.id === 'alice'
            ? {
                kind: 'handle',
                handleId: 'hdl_1',
                decisionId: 'dec_ok',
                sizeBytes: 1,
                toolError: false,
              }
            : refused('NO_MATCHING_GRANT'),
        ),
      peek: (): Promise<PeekOutcome> => Promise.resolve(refused('HANDLE_NOT_OWNED')),
      pipe: (): Promise<CallOutcome> => Promise.resolve(refused('HANDLE_NOT_OWNED')),
    },
    listings,
    manifest: { all: () => Promise.resolve([{ capability, inlinePreview: false }]) },
    grants: { grantsOf: (id) => Promise.resolve(id === 'alice' ? [grant] : []) },
    audit: { record: (entry) => void audit.push(entry) },
  });
  const app = await NestFactory.create<NestExpressApplication>(
    EdgeHttpModule.forRoot({ endpoint, ready: () => Promise.resolve(undefined) }),
    { logger: false, bodyParser: false },
  );
  // As edge.ts wires it: what Node's parser refuses is answered by the endpoint too.
  app
    .getHttpServer()
    .on('clientError', (err: Error, socket: Duplex) => endpoint.answerClientError(err, socket));
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as { port: number }).port;
  const tokens = {
    alice: await mintToken(alice, AUTH),
    bob: await mintToken(bob, AUTH),
    expired: await mintToken(alice, { ...AUTH, ttlSec: -60 }),
    foreignKey: await mintToken(alice, {
      ...AUTH,
      hs256Secret: 'another-secret-0123456789abcdef0123',
    }),
  };
  const open = async (token: string): Promise<string> => {
    const init = await send(port, 'POST', JSON_HEADERS(token), INITIALIZE);
    const session = init.headers['mcp-session-id'];
    if (typeof session !== 'string') throw new Error(`no session: ${init.status} ${init.body}`);
    await send(port, 'POST', { ...JSON_HEADERS(token), ...sessionHeaders(session) }, INITIALIZED);
    return session;
  };
  const sessions = { alice: await open(tokens.alice), bob: await open(tokens.bob) };
  return { port, audit, tokens, sessions, open, close: () => app.close() };
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'f', version: '1' },
  },
});
const INITIALIZED = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });

const JSON_HEADERS = (token: string): OutgoingHttpHeaders => ({
  authorization: `Bearer ${token}`,
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
});

const sessionHeaders = (id: string): OutgoingHttpHeaders => ({
  'mcp-session-id': id,
  'mcp-protocol-version': '2025-11-25',
});

/**
 * One raw exchange. An SSE answer (a GET stream stays open) is read up to its headers and the
 * first event, then the request is aborted: its status and type are what the check needs.
 */
function send(
  port: number,
  method: string,
  headers: OutgoingHttpHeaders,
  body: string | Buffer | undefined,
): Promise<Reply & { readonly headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/mcp', method, headers, agent: false },
      (res) => {
        const contentType = String(res.headers['content-type'] ?? '');
        const chunks: Buffer[] = [];
        const done = () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          });
        if (contentType.includes('text/event-stream')) {
          const timer = setTimeout(() => {
            req.destroy();
            done();
          }, 50);
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('close', () => {
            clearTimeout(timer);
            done();
          });
          return;
        }
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error('no answer in 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Every JSON-RPC message of a reply body: a JSON object or array, or the data lines of SSE. */
function messagesOf(reply: Reply): unknown[] | 'unparsable' {
  const texts = reply.contentType.includes('text/event-stream')
    ? reply.body
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trim())
        .filter((l) => l !== '')
    : reply.body === ''
      ? []
      : [reply.body];
  const out: unknown[] = [];
  for (const text of texts) {
    try {
      const parsed: unknown = JSON.parse(text);
      out.push(...(Array.isArray(parsed) ? (parsed as unknown[]) : [parsed]));
    } catch {
      return 'unparsable';
    }
  }
  return out;
}

/** Why a reply is untyped, or undefined when every refusal in it carries a closed-set reason. */
function untyped(reply: Reply): string | undefined {
  const messages = messagesOf(reply);
  if (messages === 'unparsable') return `body is not JSON: ${reply.body.slice(0, 120)}`;
  const refusing = reply.status >= 300;
  if (refusing && messages.length === 0) return `status ${reply.status} without a body`;
  for (const m of messages) {
    const error = (m as { error?: { data?: { reason?: unknown } } } | null)?.error;
    if (error === undefined) {
      if (refusing) return `status ${reply.status} without an error`;
      continue;
    }
    const reason = error.data?.reason;
    if (typeof reason !== 'string' || !DENIAL_REASONS.has(reason))
      return `error without a typed reason: ${JSON.stringify(error).slice(0, 200)}`;
    // The fakes never fail: an internal error here would be client input crashing the server.
    if ((error as { code?: unknown }).code === -32603)
      return `internal error for client input: ${JSON.stringify(error).slice(0, 200)}`;
  }
  return undefined;
}

// ----- generators -----

const METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'prompts/get',
  'foo/bar',
  'notifications/initialized',
  'notifications/cancelled',
  'logging/setLevel',
  'completion/complete',
  'tasks/get',
];

const junk = fc.oneof(
  fc.anything({ maxDepth: 3, maxKeys: 4 }),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.constant(null),
);

const toolCallParams = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        name: fc.oneof(
          fc.constantFrom('up.read', 'up.write', 'hcp_peek', 'hcp_pipe', 'nope', ''),
          fc.string({ maxLength: 20 }),
          junk,
        ),
        arguments: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), junk, { maxKeys: 4 }), junk),
        _meta: fc.oneof(fc.record({ 'hcp/approvalId': junk }), junk),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: junk },
);

const jsonRpcMessage = fc.oneof(
  // A well-formed envelope around a known or unknown method and params that may fit or not.
  {
    weight: 6,
    arbitrary: fc.record({
      jsonrpc: fc.constant('2.0'),
      id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 })),
      method: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...METHODS) },
        { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
      ),
      params: fc.oneof(toolCallParams, fc.dictionary(fc.string({ maxLength: 8 }), junk)),
    }),
  },
  // A well-formed tools/call with wrong-typed params.
  {
    weight: 4,
    arbitrary: toolCallParams.map((params) => ({
      jsonrpc: '2.0',
      id: 9,
      method: 'tools/call',
      params,
    })),
  },
  // Anything in any field.
  {
    weight: 1,
    arbitrary: fc.record(
      {
        jsonrpc: fc.oneof(fc.constant('2.0'), fc.constant('1.0'), junk),
        id: fc.oneof(fc.integer(), fc.constant(null), junk),
        method: fc.oneof(fc.constantFrom(...METHODS), junk),
        params: junk,
      },
      { requiredKeys: ['jsonrpc', 'method'] },
    ),
  },
  // A response message (what a client answers a question with).
  {
    weight: 1,
    arbitrary: fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer(), result: junk }),
  },
  { weight: 1, arbitrary: junk },
);

const HUGE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'up.read', arguments: { pad: 'x'.repeat(1024 * 1024 + 10) } },
});

const body = fc.oneof(
  { weight: 6, arbitrary: jsonRpcMessage.map((m) => JSON.stringify(m) ?? '') },
  {
    weight: 2,
    arbitrary: fc
      .array(jsonRpcMessage, { minLength: 0, maxLength: 40 })
      .map((ms) => JSON.stringify(ms)),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 20_000 })
      .map(
        (depth) =>
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.read","arguments":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}}`,
      ),
  },
  { weight: 1, arbitrary: fc.constant(HUGE) },
  { weight: 1, arbitrary: fc.constant('') },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((bytes) => Buffer.from(bytes).toString('latin1')),
  },
);

type TokenKind = 'alice' | 'bob' | 'expired' | 'foreignKey' | 'none' | 'garbage' | 'basic';
type SessionKind = 'own' | 'foreign' | 'none' | 'forged' | 'huge';

const request = fc.record({
  method: fc.oneof(
    { weight: 12, arbitrary: fc.constant('POST') },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS') },
  ),
  token: fc.oneof(
    { weight: 10, arbitrary: fc.constant<TokenKind>('alice') },
    {
      weight: 3,
      arbitrary: fc.constantFrom<TokenKind>(
        'bob',
        'expired',
        'foreignKey',
        'none',
        'garbage',
        'basic',
      ),
    },
  ),
  session: fc.oneof(
    { weight: 10, arbitrary: fc.constant<SessionKind>('own') },
    { weight: 3, arbitrary: fc.constantFrom<SessionKind>('foreign', 'none', 'forged', 'huge') },
  ),
  version: fc.oneof(
    { weight: 8, arbitrary: fc.constant<string | undefined>('2025-11-25') },
    {
      weight: 2,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        '2025-06-18',
        '2024-11-05',
        '1999-01-01',
        'x',
      ),
    },
  ),
  contentType: fc.oneof(
    { weight: 10, arbitrary: fc.constant<string | undefined>('application/json') },
    {
      weight: 2,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        'text/plain',
        'application/json; charset=utf-8',
        'application/jsonx',
        'multipart/form-data',
      ),
    },
  ),
  accept: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constant<string | undefined>('application/json, text/event-stream'),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        'text/html',
        'text/event-stream',
        '*/*',
      ),
    },
  ),
  body,
});

describe('/mcp under generated requests', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it(`answers ${RUNS} generated requests with no 5xx and no untyped refusal`, async () => {
    const totals = {
      requests: 0,
      byStatus: {} as Record<string, number>,
      errors: 0,
      untyped: 0,
      serverErrors: 0,
      reasons: {} as Record<string, number>,
      /** HTTP status / JSON-RPC code of each error. */
      codes: {} as Record<string, number>,
    };
    const problems: string[] = [];
    await fc
      .assert(
        fc.asyncProperty(request, async (r) => {
          const headers: OutgoingHttpHeaders = {};
          const token = r.token;
          if (token === 'garbage') headers.authorization = 'Bearer not.a.jwt';
          else if (token === 'basic') headers.authorization = 'Basic YWxpY2U6cHc=';
          else if (token !== 'none') headers.authorization = `Bearer ${world.tokens[token]}`;
          const own =
            r.method === 'DELETE' && (token === 'alice' || token === 'bob')
              ? await world.open(world.tokens[token])
              : token === 'bob'
                ? world.sessions.bob
                : world.sessions.alice;
          const session = {
            own,
            foreign: token === 'bob' ? world.sessions.alice : world.sessions.bob,
            none: undefined,
            forged: 'v1.k1.forged-session-id',
            huge: 's'.repeat(20_000),
          }[r.session];
          if (session !== undefined) headers['mcp-session-id'] = session;
          if (r.version !== undefined) headers['mcp-protocol-version'] = r.version;
          if (r.contentType !== undefined) headers['content-type'] = r.contentType;
          if (r.accept !== undefined) headers.accept = r.accept;
          const hasBody = r.method !== 'GET' && r.method !== 'DELETE';
          const reply = await send(world.port, r.method, headers, hasBody ? r.body : undefined);
          totals.requests += 1;
          const cls = `${Math.floor(reply.status / 100)}xx`;
          totals.byStatus[cls] = (totals.byStatus[cls] ?? 0) + 1;
          const messages = messagesOf(reply);
          if (messages !== 'unparsable')
            for (const m of messages) {
              const error = (m as { error?: { code?: number; data?: { reason?: string } } } | null)
                ?.error;
              if (error === undefined) continue;
              totals.errors += 1;
              const reason = `${error.data?.reason ?? 'none'}`;
              totals.reasons[reason] = (totals.reasons[reason] ?? 0) + 1;
              const code = `${reply.status}/${error.code ?? 'none'}`;
              totals.codes[code] = (totals.codes[code] ?? 0) + 1;
            }
          if (reply.status >= 500) {
            totals.serverErrors += 1;
            problems.push(
              `${reply.status} for ${r.method} ${r.body.slice(0, 120)}: ${reply.body.slice(0, 200)}`,
            );
          }
          const why = untyped(reply);
          if (why !== undefined) {
            totals.untyped += 1;
            problems.push(
              `${r.method} ${String(headers['content-type'])} ${r.body.slice(0, 80)} -> ${reply.status}: ${why}`,
            );
          }
          return reply.status < 500 && why === undefined;
        }),
        { numRuns: RUNS, endOnFailure: true },
      )
      .catch((err: unknown) => {
        throw new Error(
          `${String(err).slice(0, 2000)}\nproblems:\n${problems.slice(0, 10).join('\n')}`,
        );
      });
    console.log(`mcp fuzz totals: ${JSON.stringify(totals)}`);
    expect(totals.requests).toBeGreaterThanOrEqual(RUNS);
    expect(totals.untyped).toBe(0);
    expect(totals.serverErrors).toBe(0);
    // Every refusal was recorded: each error a request got back names a decision id in the audit.
    expect(world.audit.filter((e) => e.outcome === 'deny').length).toBeGreaterThan(0);
  }, 120_000);
});
