import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { ReasonCode, SessionFacts } from '@hcp/core';
import { PolicyEngine } from '@hcp/policy';
import {
  DEFAULT_SUPPORTED_PROTOCOL_VERSIONS,
  ProtocolState,
  type ProtocolHeaders,
  type ProtocolRequest,
  type ProtocolStateOptions,
  type ProtocolVerdict,
} from './protocol-state';
import { SignedSessionStore } from './session-store';

const T0 = 1_750_000_000_000;
const TTL = 60_000;
const KEY = { id: 'k1', secret: 'protocol-state-test-key-32-bytes-long!' };
const META = 'io.modelcontextprotocol/protocolVersion';

/** Sessions of alice (unless said otherwise) in every lifecycle state, on one store. */
interface Env {
  readonly state: ProtocolState;
  readonly s: {
    /** initialized, 2025-11-25 */
    ready: string;
    /** initialized, 2025-06-18 */
    ready0618: string;
    /** initialized, 2025-03-26 (clients of that revision send no version header) */
    ready0326: string;
    /** initialize answered, notifications/initialized not yet seen */
    fresh: string;
    ended: string;
    /** expires exactly at the test's clock */
    expiring: string;
    bobs: string;
  };
  /** Moves the clock to the expiring session's expiry (or 1 ms before). */
  expire(justBefore?: boolean): void;
}

async function env(options: Partial<ProtocolStateOptions> = {}): Promise<Env> {
  let now = T0;
  const store = new SignedSessionStore({ keys: [KEY], ttlMs: TTL, now: () => now });
  const ready = async (owner: string, v: string) => {
    const id = await store.create(owner, v);
    await store.markInitialized(id);
    return id;
  };
  const expiring = await ready('alice', '2025-11-25');
  now += 10_000;
  const ended = await ready('alice', '2025-11-25');
  await store.end(ended);
  const s = {
    ready: await ready('alice', '2025-11-25'),
    ready0618: await ready('alice', '2025-06-18'),
    ready0326: await ready('alice', '2025-03-26'),
    fresh: await store.create('alice', '2025-11-25'),
    ended,
    expiring,
    bobs: await ready('bob', '2025-11-25'),
  };
  return {
    state: new ProtocolState({ store, ...options }),
    s,
    expire: (justBefore = false) => {
      now = T0 + TTL - (justBefore ? 1 : 0);
    },
  };
}

function post(
  method: string | undefined,
  headers: ProtocolHeaders,
  params?: unknown,
  principalId: string | undefined = 'alice',
): ProtocolRequest {
  return {
    httpMethod: 'POST',
    message: { method, ...(params !== undefined ? { params } : {}) },
    headers,
    ...(principalId !== undefined ? { principalId } : {}),
  };
}
const sess = (id: string, version?: string): ProtocolHeaders => ({
  'mcp-session-id': id,
  ...(version !== undefined ? { 'mcp-protocol-version': version } : {}),
});
const init = (protocolVersion: unknown, headers: ProtocolHeaders = {}) =>
  post('initialize', headers, { protocolVersion, capabilities: {}, clientInfo: { name: 't' } });
const call = (headers: ProtocolHeaders, principalId?: string) =>
  post('tools/call', headers, { name: 'read_file', arguments: {} }, principalId);

interface Refused {
  readonly reason: ReasonCode;
  readonly http: number;
  readonly code: number;
  /** False where the refusal is the edge's alone (malformed input, strict header mode). */
  readonly engineAgrees?: boolean;
}
interface Allowed {
  readonly kind: 'initialize' | 'proceed';
  readonly lifecycle?: 'none' | 'initialized' | 'end';
  readonly negotiated?: string;
}
interface Pair {
  readonly check: string;
  readonly options?: Partial<ProtocolStateOptions>;
  readonly refused: { readonly req: (e: Env) => ProtocolRequest; readonly expect: Refused };
  readonly allowed: { readonly req: (e: Env) => ProtocolRequest; readonly expect: Allowed };
  /** Clock position for both halves. */
  readonly at?: (e: Env) => void;
}

/** The decision engine over the same facts; a refusal must be the engine's refusal too. */
function engineReason(verdict: ProtocolVerdict, principalId: string, versions: readonly string[]) {
  const engine = new PolicyEngine({ supportedProtocolVersions: versions });
  const d = engine.decidePeek({
    principal: { id: principalId, kind: 'agent' },
    session: verdict.session,
    now: T0,
    handleId: 'hdl_1',
    handle: {
      id: 'hdl_1',
      ownerPrincipalId: principalId,
      producingCapability: 'fs.read',
      labels: {},
      createdAt: T0,
      expiresAt: T0 + 10 * TTL,
      sizeBytes: 1,
    },
  });
  return d.reason;
}

const B = { code: -32000 };
const NOT_FOUND = { http: 404, code: -32001 };

const SESSION_PAIRS: readonly Pair[] = [
  {
    check: 'initialize with an unsupported version',
    refused: {
      req: () => init('2024-11-05'),
      expect: {
        reason: 'PROTOCOL_VERSION_UNSUPPORTED',
        http: 200,
        code: -32602,
        engineAgrees: false,
      },
    },
    allowed: {
      req: () => init('2025-06-18'),
      expect: { kind: 'initialize', negotiated: '2025-06-18' },
    },
  },
  {
    check: 'initialize with a version that is not a string',
    refused: {
      req: () => init(20250326),
      expect: {
        reason: 'PROTOCOL_VERSION_UNSUPPORTED',
        http: 200,
        code: -32602,
        engineAgrees: false,
      },
    },
    allowed: {
      req: () => init('2025-03-26'),
      expect: { kind: 'initialize', negotiated: '2025-03-26' },
    },
  },
  {
    check: 'initialize whose version header is unsupported',
    refused: {
      req: () => init('2025-11-25', { 'mcp-protocol-version': '2099-01-01' }),
      expect: { reason: 'PROTOCOL_VERSION_UNSUPPORTED', http: 400, ...B, engineAgrees: false },
    },
    allowed: {
      req: () => init('2025-11-25', { 'mcp-protocol-version': '2025-11-25' }),
      expect: { kind: 'initialize', negotiated: '2025-11-25' },
    },
  },
  {
    check: 'initialize whose version header disagrees with its body',
    refused: {
      req: () => init('2025-11-25', { 'mcp-protocol-version': '2025-06-18' }),
      expect: { reason: 'PROTOCOL_VERSION_MISMATCH', http: 400, ...B, engineAgrees: false },
    },
    allowed: { req: () => init('2025-11-25'), expect: { kind: 'initialize' } },
  },
  {
    check: 'initialize carrying a session id',
    refused: {
      req: (e) => init('2025-11-25', sess(e.s.ready)),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32600, engineAgrees: false },
    },
    allowed: { req: () => init('2025-11-25'), expect: { kind: 'initialize' } },
  },
  {
    check: 'a call without any session (missing initialize)',
    refused: {
      req: () => call({}),
      expect: { reason: 'SESSION_NOT_INITIALIZED', http: 400, ...B },
    },
    allowed: {
      req: (e) => call(sess(e.s.ready, '2025-11-25')),
      expect: { kind: 'proceed', lifecycle: 'none' },
    },
  },
  {
    check: 'a sessionless call speaking a version we do not support',
    refused: {
      req: () => call({ 'mcp-protocol-version': '2026-07-28' }),
      expect: { reason: 'PROTOCOL_VERSION_UNSUPPORTED', http: 400, ...B, engineAgrees: false },
    },
    allowed: { req: (e) => call(sess(e.s.ready, '2025-11-25')), expect: { kind: 'proceed' } },
  },
  {
    check: 'a call before notifications/initialized',
    refused: {
      req: (e) => call(sess(e.s.fresh, '2025-11-25')),
      expect: { reason: 'SESSION_NOT_INITIALIZED', http: 400, ...B },
    },
    allowed: {
      req: (e) => post('notifications/initialized', sess(e.s.fresh, '2025-11-25')),
      expect: { kind: 'proceed', lifecycle: 'initialized' },
    },
  },
  {
    check: 'the GET stream before notifications/initialized',
    refused: {
      req: (e) => ({
        httpMethod: 'GET',
        headers: sess(e.s.fresh, '2025-11-25'),
        principalId: 'alice',
      }),
      expect: { reason: 'SESSION_NOT_INITIALIZED', http: 400, ...B },
    },
    allowed: {
      req: (e) => ({
        httpMethod: 'GET',
        headers: sess(e.s.ready, '2025-11-25'),
        principalId: 'alice',
      }),
      expect: { kind: 'proceed', lifecycle: 'none' },
    },
  },
  {
    check: 'a response message before notifications/initialized',
    refused: {
      req: (e) => post(undefined, sess(e.s.fresh, '2025-11-25')),
      expect: { reason: 'SESSION_NOT_INITIALIZED', http: 400, ...B },
    },
    allowed: {
      req: (e) => post('ping', sess(e.s.fresh, '2025-11-25')),
      expect: { kind: 'proceed', lifecycle: 'none' },
    },
  },
  {
    check: 'a forged session id',
    refused: {
      req: (e) => call(sess(`${e.s.ready.slice(0, -3)}AAA`, '2025-11-25')),
      expect: { reason: 'SESSION_UNKNOWN', ...NOT_FOUND },
    },
    allowed: { req: (e) => call(sess(e.s.ready, '2025-11-25')), expect: { kind: 'proceed' } },
  },
  {
    check: 'an ended session',
    refused: {
      req: (e) => call(sess(e.s.ended, '2025-11-25')),
      expect: { reason: 'SESSION_UNKNOWN', ...NOT_FOUND },
    },
    allowed: { req: (e) => call(sess(e.s.ready, '2025-11-25')), expect: { kind: 'proceed' } },
  },
  {
    check: 'an expired session (at exp; 1 ms before is live)',
    refused: {
      req: (e) => (e.expire(), call(sess(e.s.expiring, '2025-11-25'))),
      expect: { reason: 'SESSION_EXPIRED', ...NOT_FOUND },
    },
    allowed: {
      req: (e) => (e.expire(true), call(sess(e.s.expiring, '2025-11-25'))),
      expect: { kind: 'proceed' },
    },
  },
  {
    check: "another principal's session",
    refused: {
      req: (e) => call(sess(e.s.bobs, '2025-11-25')),
      expect: { reason: 'SESSION_FOREIGN', ...NOT_FOUND },
    },
    allowed: { req: (e) => call(sess(e.s.bobs, '2025-11-25'), 'bob'), expect: { kind: 'proceed' } },
  },
  {
    check: "another principal's expired session (ownership is told before state)",
    refused: {
      req: (e) => (e.expire(), call(sess(e.s.expiring, '2025-11-25'), 'bob')),
      expect: { reason: 'SESSION_FOREIGN', ...NOT_FOUND },
    },
    allowed: {
      req: (e) => (e.expire(true), call(sess(e.s.expiring, '2025-11-25'))),
      expect: { kind: 'proceed' },
    },
  },
  {
    check: "another principal's uninitialized session",
    refused: {
      req: (e) => call(sess(e.s.fresh, '2025-11-25'), 'bob'),
      expect: { reason: 'SESSION_FOREIGN', ...NOT_FOUND },
    },
    allowed: {
      req: (e) => post('notifications/initialized', sess(e.s.fresh, '2025-11-25')),
      expect: { kind: 'proceed', lifecycle: 'initialized' },
    },
  },
  {
    check: 'an unsupported version header',
    refused: {
      req: (e) => call(sess(e.s.ready, '2024-11-05')),
      expect: { reason: 'PROTOCOL_VERSION_UNSUPPORTED', http: 400, ...B },
    },
    allowed: { req: (e) => call(sess(e.s.ready, '2025-11-25')), expect: { kind: 'proceed' } },
  },
  {
    check: 'a version header disagreeing with the negotiated version',
    refused: {
      req: (e) => call(sess(e.s.ready, '2025-06-18')),
      expect: { reason: 'PROTOCOL_VERSION_MISMATCH', http: 400, ...B },
    },
    allowed: { req: (e) => call(sess(e.s.ready0618, '2025-06-18')), expect: { kind: 'proceed' } },
  },
  {
    check: 'a session whose negotiated version was withdrawn by configuration',
    options: { supportedVersions: ['2025-11-25', '2025-06-18'] },
    refused: {
      req: (e) => call(sess(e.s.ready0326)),
      expect: { reason: 'PROTOCOL_VERSION_UNSUPPORTED', http: 400, ...B },
    },
    allowed: { req: (e) => call(sess(e.s.ready0618, '2025-06-18')), expect: { kind: 'proceed' } },
  },
  {
    check: 'strict mode: no version header on a 2025-06-18+ session',
    options: { requireVersionHeader: true },
    refused: {
      req: (e) => call(sess(e.s.ready0618)),
      expect: { reason: 'PROTOCOL_VERSION_MISMATCH', http: 400, ...B, engineAgrees: false },
    },
    allowed: { req: (e) => call(sess(e.s.ready0326)), expect: { kind: 'proceed' } },
  },
  {
    check: 'a repeated Mcp-Session-Id header',
    refused: {
      req: (e) => call({ 'mcp-session-id': [e.s.ready, e.s.bobs] }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32600, engineAgrees: false },
    },
    allowed: { req: (e) => call({ 'mcp-session-id': [e.s.ready] }), expect: { kind: 'proceed' } },
  },
  {
    check: "DELETE of another principal's session",
    refused: {
      req: (e) => ({ httpMethod: 'DELETE', headers: sess(e.s.fresh), principalId: 'bob' }),
      expect: { reason: 'SESSION_FOREIGN', ...NOT_FOUND },
    },
    allowed: {
      req: (e) => ({ httpMethod: 'DELETE', headers: sess(e.s.fresh), principalId: 'alice' }),
      expect: { kind: 'proceed', lifecycle: 'end' },
    },
  },
  {
    check: 'no authenticated principal',
    refused: {
      req: (e) => call(sess(e.s.ready, '2025-11-25'), ''),
      expect: { reason: 'PRINCIPAL_UNAUTHENTICATED', http: 401, ...B, engineAgrees: false },
    },
    allowed: {
      req: (e) => call(sess(e.s.ready, '2025-11-25'), 'alice'),
      expect: { kind: 'proceed' },
    },
  },
];

const STATELESS = { statelessRevision: { enabled: true } } as const;
const V26 = '2026-07-28';
/** A 2026-07-28 request: version in _meta and header, Mcp-Method/Mcp-Name repeating the body. */
function modern(
  over: { meta?: unknown; headers?: ProtocolHeaders; method?: string; params?: object } = {},
): ProtocolRequest {
  const method = over.method ?? 'tools/call';
  const params = over.params ?? { name: 'read_file', arguments: {} };
  const meta = 'meta' in over ? over.meta : V26;
  return post(
    method,
    over.headers ?? { 'mcp-protocol-version': V26, 'mcp-method': method, 'mcp-name': 'read_file' },
    {
      ...params,
      ...(meta !== undefined ? { _meta: { [META]: meta } } : {}),
    },
  );
}

const STATELESS_PAIRS: readonly Pair[] = [
  {
    check: '2026: an unsupported version in _meta',
    options: STATELESS,
    refused: {
      req: () =>
        modern({
          meta: '2027-01-01',
          headers: {
            'mcp-protocol-version': '2027-01-01',
            'mcp-method': 'tools/call',
            'mcp-name': 'read_file',
          },
        }),
      expect: {
        reason: 'PROTOCOL_VERSION_UNSUPPORTED',
        http: 400,
        code: -32022,
        engineAgrees: false,
      },
    },
    allowed: { req: () => modern(), expect: { kind: 'proceed', lifecycle: 'none' } },
  },
  {
    check: '2026: no version in _meta',
    options: STATELESS,
    refused: {
      req: () => modern({ meta: undefined }),
      expect: {
        reason: 'PROTOCOL_VERSION_UNSUPPORTED',
        http: 400,
        code: -32022,
        engineAgrees: false,
      },
    },
    allowed: { req: () => modern(), expect: { kind: 'proceed' } },
  },
  {
    check: '2026: version header disagreeing with _meta',
    options: { statelessRevision: { enabled: true, supportedVersions: [V26, '2026-12-01'] } },
    refused: {
      req: () =>
        modern({
          headers: {
            'mcp-protocol-version': '2026-12-01',
            'mcp-method': 'tools/call',
            'mcp-name': 'read_file',
          },
        }),
      expect: { reason: 'PROTOCOL_VERSION_MISMATCH', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: {
      req: () => modern({ headers: { 'mcp-method': 'tools/call', 'mcp-name': 'read_file' } }),
      expect: { kind: 'proceed' },
    },
  },
  {
    check: '2026: Mcp-Method missing',
    options: STATELESS,
    refused: {
      req: () => modern({ headers: { 'mcp-protocol-version': V26, 'mcp-name': 'read_file' } }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: { req: () => modern(), expect: { kind: 'proceed' } },
  },
  {
    check: '2026: Mcp-Method naming another method than the body',
    options: STATELESS,
    refused: {
      req: () =>
        modern({
          headers: {
            'mcp-protocol-version': V26,
            'mcp-method': 'tools/list',
            'mcp-name': 'read_file',
          },
        }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: { req: () => modern(), expect: { kind: 'proceed' } },
  },
  {
    check: '2026: Mcp-Name naming another tool than the body',
    options: STATELESS,
    refused: {
      req: () =>
        modern({
          headers: {
            'mcp-protocol-version': V26,
            'mcp-method': 'tools/call',
            'mcp-name': 'list_dir',
          },
        }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: { req: () => modern(), expect: { kind: 'proceed' } },
  },
  {
    check: '2026: Mcp-Name missing on tools/call',
    options: STATELESS,
    refused: {
      req: () => modern({ headers: { 'mcp-protocol-version': V26, 'mcp-method': 'tools/call' } }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: { req: () => modern(), expect: { kind: 'proceed' } },
  },
  {
    check: '2026: Mcp-Name on a method without a target',
    options: STATELESS,
    refused: {
      req: () =>
        modern({
          method: 'tools/list',
          params: {},
          headers: { 'mcp-protocol-version': V26, 'mcp-method': 'tools/list', 'mcp-name': 'x' },
        }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: {
      req: () =>
        modern({
          method: 'tools/list',
          params: {},
          headers: { 'mcp-protocol-version': V26, 'mcp-method': 'tools/list' },
        }),
      expect: { kind: 'proceed' },
    },
  },
  {
    check: '2026: resources/read with Mcp-Name disagreeing with the uri',
    options: STATELESS,
    refused: {
      req: () =>
        modern({
          method: 'resources/read',
          params: { uri: 'file:///a' },
          headers: {
            'mcp-protocol-version': V26,
            'mcp-method': 'resources/read',
            'mcp-name': 'file:///b',
          },
        }),
      expect: { reason: 'INPUT_INVALID', http: 400, code: -32020, engineAgrees: false },
    },
    allowed: {
      req: () =>
        modern({
          method: 'resources/read',
          params: { uri: 'file:///a' },
          headers: {
            'mcp-protocol-version': V26,
            'mcp-method': 'resources/read',
            'mcp-name': 'file:///a',
          },
        }),
      expect: { kind: 'proceed' },
    },
  },
  {
    check: '2026 off (default): a stateless request is a sessionless 2025 request',
    refused: {
      req: () => modern(),
      expect: { reason: 'PROTOCOL_VERSION_UNSUPPORTED', http: 400, ...B, engineAgrees: false },
    },
    allowed: { req: (e) => call(sess(e.s.ready, '2025-11-25')), expect: { kind: 'proceed' } },
  },
];

describe.each([
  ['2025 sessions', SESSION_PAIRS],
  ['2026-07-28 stateless', STATELESS_PAIRS],
])('ProtocolState (%s): each failure beside its allowed neighbour', (_, pairs) => {
  describe.each(pairs.map((p) => [p.check, p] as const))('%s', (__, pair) => {
    const versions = [
      ...(pair.options?.supportedVersions ?? DEFAULT_SUPPORTED_PROTOCOL_VERSIONS),
      ...(pair.options?.statelessRevision?.supportedVersions ?? [V26]),
    ];

    it(`refuses with ${pair.refused.expect.reason}`, async () => {
      const e = await env(pair.options);
      const req = pair.refused.req(e);
      const v = await e.state.evaluate(req);
      if (v.kind !== 'refuse') throw new Error(`expected a refusal, got ${v.kind}`);
      const x = pair.refused.expect;
      expect([v.error.reason, v.error.httpStatus, v.error.jsonRpcCode]).toEqual([
        x.reason,
        x.http,
        x.code,
      ]);
      expect(v.error.message).not.toMatch(/[A-Za-z0-9_-]{40,}/); // never echoes a session token
      if (x.engineAgrees !== false) {
        expect(engineReason(v, req.principalId!, versions)).toBe(x.reason);
      }
    });

    it(`allows the neighbour (${pair.allowed.expect.kind})`, async () => {
      const e = await env(pair.options);
      const req = pair.allowed.req(e);
      const v = await e.state.evaluate(req);
      if (v.kind === 'refuse') throw new Error(`refused: ${v.error.reason} ${v.error.message}`);
      const x = pair.allowed.expect;
      expect(v.kind).toBe(x.kind);
      if (x.negotiated !== undefined && v.kind === 'initialize')
        expect(v.negotiatedVersion).toBe(x.negotiated);
      if (x.lifecycle !== undefined && v.kind === 'proceed') expect(v.lifecycle).toBe(x.lifecycle);
      if (v.kind === 'proceed') {
        const settled: SessionFacts = v.session;
        expect(settled.ownerPrincipalId).toBe(req.principalId);
        // notifications/initialized and DELETE are not decided calls; everything else must pass the engine too.
        if (v.lifecycle === 'none' && req.message?.method !== 'ping')
          expect(engineReason(v, req.principalId!, versions)).toBe('ALLOWED');
      }
    });
  });
});

describe('ProtocolState lifecycle', () => {
  it('runs initialize -> notifications/initialized -> call -> DELETE -> refused', async () => {
    const store = new SignedSessionStore({ keys: [KEY] });
    const state = new ProtocolState({ store });
    const i = await state.evaluate(init('2025-11-25'));
    if (i.kind !== 'initialize') throw new Error(i.kind);
    const id = await state.openSession('alice', i.negotiatedVersion);
    const h = sess(id, '2025-11-25');

    expect((await state.evaluate(call(h))).kind).toBe('refuse');
    const n = await state.evaluate(post('notifications/initialized', h));
    await state.settle(n);
    const c = await state.evaluate(call(h));
    expect(c).toMatchObject({ kind: 'proceed', session: { state: 'active', initialized: true } });
    // A restarted edge (new store, same key) keeps the session but, with in-memory marks, not
    // its initialized flag: the documented limit until marks move to a shared store.
    const restarted = new ProtocolState({ store: new SignedSessionStore({ keys: [KEY] }) });
    expect(await restarted.evaluate(call(h))).toMatchObject({
      kind: 'refuse',
      error: { reason: 'SESSION_NOT_INITIALIZED' },
    });

    await state.settle(
      await state.evaluate({ httpMethod: 'DELETE', headers: h, principalId: 'alice' }),
    );
    expect(await state.evaluate(call(h))).toMatchObject({
      kind: 'refuse',
      error: { reason: 'SESSION_UNKNOWN', httpStatus: 404 },
    });
  });

  it('settle ignores refusals, so a refused DELETE ends nothing', async () => {
    const store = new SignedSessionStore({ keys: [KEY] });
    const state = new ProtocolState({ store });
    const id = await state.openSession('alice', '2025-11-25');
    await state.settle(
      await state.evaluate({ httpMethod: 'DELETE', headers: sess(id), principalId: 'bob' }),
    );
    await expect(store.get(id)).resolves.toMatchObject({ state: 'active' });
  });

  it('negotiates down instead of refusing when configured to', async () => {
    const state = new ProtocolState({
      store: new SignedSessionStore({ keys: [KEY] }),
      unsupportedInitializeVersion: 'negotiate',
    });
    await expect(state.evaluate(init('2024-11-05'))).resolves.toMatchObject({
      kind: 'initialize',
      negotiatedVersion: '2025-11-25',
    });
  });

  it('lists the supported versions in an unsupported-version refusal', async () => {
    const state = new ProtocolState({ store: new SignedSessionStore({ keys: [KEY] }) });
    await expect(state.evaluate(init('1.0.0'))).resolves.toMatchObject({
      error: { data: { supported: DEFAULT_SUPPORTED_PROTOCOL_VERSIONS, requested: '1.0.0' } },
    });
  });
});

describe('supported protocol versions', () => {
  it('offers only versions the MCP SDK supports', () => {
    for (const v of DEFAULT_SUPPORTED_PROTOCOL_VERSIONS)
      expect(SUPPORTED_PROTOCOL_VERSIONS).toContain(v);
  });

  it('offers every SDK version that runs over Streamable HTTP (2025-03-26 and later)', () => {
    const streamable = SUPPORTED_PROTOCOL_VERSIONS.filter((v) => v >= '2025-03-26');
    expect([...DEFAULT_SUPPORTED_PROTOCOL_VERSIONS].sort()).toEqual([...streamable].sort());
  });
});
