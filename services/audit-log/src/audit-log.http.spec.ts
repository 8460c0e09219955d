import { createHash } from 'node:crypto';
import request from 'supertest';
import { canonicalJson, type AuditEntry, type ReasonCode } from '@hcp/core';
import {
  createAuditPublisher,
  InProcessBus,
  mintToken,
  openDatabase,
  type Database,
} from '@hcp/platform';
import { startAuditLog, type RunningAuditLog } from './audit-log';
import { AuditEntryRepository } from './audit-entry.repository';
import type { AuditDb } from './database';
import { ENTRIES_QUERY_PARAMS } from './query-params';
import {
  AGENT,
  bearerFor,
  OPERATOR,
  publishEntries,
  T0,
  tamperWithEntry,
  TEST_AUTH,
  testEntry,
  until,
} from './testing';

/** A known set: every filter selects a different, predictable subset. */
const ENTRIES: AuditEntry[] = Array.from({ length: 30 }, (_, k) => {
  const i = k + 1;
  const allow = i % 2 === 0;
  const reason: ReasonCode = allow
    ? 'ALLOWED'
    : i % 4 === 1
      ? 'NO_MATCHING_GRANT'
      : 'RESOURCE_DENIED';
  return testEntry(i, {
    principalId: ['agent-a', 'agent-b', 'agent-c'][i % 3]!,
    outcome: allow ? 'allow' : 'deny',
    reason,
    capabilityId: i % 5 === 0 ? 'http/fetch' : 'fs/read_file',
    endpointFamily: i % 6 === 0 ? 'handle/peek' : 'tools/call',
    traceId: `trace-${Math.ceil(i / 10)}`,
    ...(allow ? {} : { matchedGrantId: undefined, missingGrant: 'fs/read_file on /srv' }),
  });
});

const idsOf = (entries: readonly AuditEntry[]) => entries.map((e) => e.id);

describe('audit-log REST API', () => {
  let database: Database<AuditDb>;
  let bus: InProcessBus;
  let audit: RunningAuditLog;
  let operator: string;
  let agent: string;
  const get = (path: string, auth: string | null = operator) => {
    const r = request(audit.url).get(path);
    return auth === null ? r : r.set('Authorization', auth);
  };

  beforeAll(async () => {
    database = await openDatabase<AuditDb>({ kind: 'pglite' });
    bus = new InProcessBus();
    audit = await startAuditLog({ db: database, bus, httpPort: 0, verifier: TEST_AUTH });
    await publishEntries(bus, ENTRIES, { source: 'edge' });
    await until(() => audit.stats.appended === ENTRIES.length, 'the known set');
    operator = await bearerFor(OPERATOR);
    agent = await bearerFor(AGENT);
  }, 120_000);
  afterAll(async () => {
    await audit.close();
    await bus.close();
    await database.close();
  });

  /** Every page of a query, following next_cursor. */
  async function all(query: string, limit: number): Promise<string[]> {
    const out: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const q = `${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await get(`/v1/audit/entries?${q}`).expect(200);
      const body = res.body as { entries: { id: string }[]; next_cursor: string | null };
      expect(body.entries.length).toBeLessThanOrEqual(limit);
      out.push(...body.entries.map((e) => e.id));
      cursor = body.next_cursor;
      if (cursor === null) return out;
    }
    throw new Error('pagination did not end');
  }

  it.each<[string, string, (e: AuditEntry) => boolean]>([
    ['no filter', '', () => true],
    ['principal', 'principal=agent-b', (e) => e.principalId === 'agent-b'],
    ['outcome', 'outcome=deny', (e) => e.outcome === 'deny'],
    ['reason', 'reason=RESOURCE_DENIED', (e) => e.reason === 'RESOURCE_DENIED'],
    ['capability', 'capability=http%2Ffetch', (e) => e.capabilityId === 'http/fetch'],
    ['endpoint family', 'endpoint_family=handle/peek', (e) => e.endpointFamily === 'handle/peek'],
    ['trace id', 'trace_id=trace-2', (e) => e.traceId === 'trace-2'],
    ['decision id', 'decision_id=dec_7', (e) => e.decisionId === 'dec_7'],
    [
      'time range (from inclusive, to exclusive)',
      `from=${new Date(T0 + 10_000).toISOString()}&to=2026-11-28T13:00:20%2B01:00`,
      (e) => e.time >= T0 + 10_000 && e.time < T0 + 20_000,
    ],
    [
      'several filters at once',
      'outcome=deny&principal=agent-a&capability=fs/read_file',
      (e) =>
        e.outcome === 'deny' && e.principalId === 'agent-a' && e.capabilityId === 'fs/read_file',
    ],
    ['a filter matching nothing', 'principal=nobody', () => false],
  ])('filters by %s, oldest first, across pages', async (_, query, match) => {
    const expected = idsOf(ENTRIES.filter(match));
    expect(await all(query, 1000)).toEqual(expected);
    expect(await all(query, 4)).toEqual(expected);
  });

  it('returns entries in the documented shape, all of them without a limit under 100', async () => {
    const res = await get('/v1/audit/entries?limit=1').expect(200);
    const body = res.body as { entries: Record<string, unknown>[]; next_cursor: string };
    expect(body.next_cursor).toEqual(expect.any(String));
    expect(body.entries[0]).toEqual({
      seq: 1,
      id: ENTRIES[0]!.id,
      time: new Date(ENTRIES[0]!.time).toISOString(),
      decision_id: 'dec_1',
      principal_id: 'agent-b',
      endpoint_family: 'tools/call',
      capability_id: 'fs/read_file',
      resource_raw: './notes/1.txt',
      resource_canonical: '/srv/notes/1.txt',
      outcome: 'deny',
      reason: 'NO_MATCHING_GRANT',
      invariant: null,
      check: 'all',
      matched_grant_id: null,
      missing_grant: 'fs/read_file on /srv',
      rule: null,
      approval_id: null,
      handle_ids: [],
      trace_id: 'trace-1',
      prev_hash: '0'.repeat(64),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
      source: 'edge',
      ingested_at: expect.any(String) as string,
    });
    const page = await get('/v1/audit/entries').expect(200);
    expect((page.body as { entries: unknown[] }).entries).toHaveLength(30);
  });

  it('lets an operator recompute a hash from the REST JSON as README.md describes', async () => {
    const res = await get(`/v1/audit/entries/${ENTRIES[4]!.id}`).expect(200);
    const e = res.body as Record<string, unknown>;
    // README recipe: camelCase names, drop null and the chain/ingest fields, time in epoch ms.
    const form: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) {
      if (v === null || ['seq', 'prev_hash', 'hash', 'source', 'ingested_at'].includes(k)) continue;
      const name = k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
      form[name] = k === 'time' ? Date.parse(v as string) : v;
    }
    const recomputed = createHash('sha256')
      .update(String(e['prev_hash']) + canonicalJson(form))
      .digest('hex');
    expect(recomputed).toBe(e['hash']);
  });

  it('gets one entry by id, and 404s an unknown id', async () => {
    const res = await get(`/v1/audit/entries/${ENTRIES[2]!.id}`).expect(200);
    expect(res.body).toMatchObject({ id: ENTRIES[2]!.id, seq: 3 });
    const missing = await get('/v1/audit/entries/aud_nope').expect(404);
    expect(missing.body).toEqual({
      reason: 'INPUT_INVALID',
      decisionId: expect.stringMatching(/^dec_/) as string,
      error: { code: 'NOT_FOUND', message: 'audit entry aud_nope not found' },
    });
  });

  it.each<[string, string]>([
    ['reason=NOPE', 'reason'],
    ['reason=no_matching_grant', 'reason'],
    ['outcome=maybe', 'outcome'],
    ['endpoint_family=tools', 'endpoint_family'],
    ['from=yesterday', 'from'],
    ['from=2026-11-28%2012:00:00Z', 'from'],
    ['to=2026-13-01T00:00:00Z', 'to'],
    [`from=2026-11-28T12:00:10Z&to=2026-11-28T12:00:10Z`, 'to'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=-1', 'limit'],
    ['cursor=!!!', 'cursor'],
    ['cursor=eyJ2IjoxfQ', 'cursor'],
    ['principal=a&principal=b', 'principal'],
    ['principal=', 'principal'],
    ['principle=agent-a', 'principle'],
  ])('answers 400 naming the parameter for %s', async (query, param) => {
    const res = await get(`/v1/audit/entries?${query}`).expect(400);
    const body = res.body as { error: { code: string; message: string } };
    expect(body.error.code).toBe('INPUT_INVALID');
    expect(body.error.message.startsWith(`${param}: `)).toBe(true);
  });

  it('refuses a cursor replayed with different filters', async () => {
    const first = await get('/v1/audit/entries?outcome=deny&limit=2').expect(200);
    const cursor = (first.body as { next_cursor: string }).next_cursor;
    const res = await get(`/v1/audit/entries?outcome=allow&limit=2&cursor=${cursor}`).expect(400);
    expect((res.body as { error: { message: string } }).error.message).toMatch(/^cursor: /);
  });

  it('answers 401 without a valid token and 403 for a principal that is not an operator', async () => {
    for (const path of [
      '/v1/audit/entries',
      `/v1/audit/entries/${ENTRIES[0]!.id}`,
      '/v1/audit/verify',
    ]) {
      const none = await get(path, null).expect(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(none.body).toEqual({
        reason: 'PRINCIPAL_UNAUTHENTICATED',
        decisionId: expect.stringMatching(/^dec_/) as string,
        error: { code: 'PRINCIPAL_UNAUTHENTICATED', message: 'no bearer token' },
      });
      await get(path, 'Bearer not-a-jwt').expect(401);
      const forbidden = await get(path, agent).expect(403);
      expect(forbidden.body).toMatchObject({
        reason: 'SCOPE_MISSING',
        error: { code: 'FORBIDDEN' },
      });
      await get(path).expect(200);
    }
    const expired = await mintToken(OPERATOR, { ...TEST_AUTH, ttlSec: -120 });
    expect((await get('/v1/audit/entries', `Bearer ${expired}`).expect(401)).body).toMatchObject({
      error: { message: 'token expired' },
    });
    const otherAudience = await mintToken(OPERATOR, { ...TEST_AUTH, audience: 'edge' });
    await get('/v1/audit/entries', `Bearer ${otherAudience}`).expect(401);
    await get('/v1/audit/entries', await bearerFor({ id: 'svc', kind: 'service' })).expect(403);
  });

  it('serves health and readiness without a token; an unknown route only after authentication', async () => {
    await get('/healthz', null).expect(200, { status: 'ok' });
    await get('/readyz', null).expect(200, { status: 'ready' });
    const anonymous = await get('/v1/nothing', null).expect(401);
    expect(anonymous.body).toMatchObject({ reason: 'PRINCIPAL_UNAUTHENTICATED' });
    const res = await get('/v1/nothing').expect(404);
    expect(res.body).toMatchObject({ reason: 'INPUT_INVALID', error: { code: 'NOT_FOUND' } });
  });

  it('serves an OpenAPI 3 document listing every route and parameter', async () => {
    const res = await get('/v1/openapi.json', null).expect(200);
    const doc = res.body as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: { name: string; in: string }[];
            responses: Record<string, unknown>;
            security?: unknown[];
          }
        >
      >;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/readyz',
        '/v1/audit/entries',
        '/v1/audit/entries/{id}',
        '/v1/audit/verify',
        '/v1/openapi.json',
      ].sort(),
    );
    const list = doc.paths['/v1/audit/entries']!['get']!;
    expect(list.parameters!.map((p) => p.name).sort()).toEqual([...ENTRIES_QUERY_PARAMS].sort());
    expect(Object.keys(list.responses).sort()).toEqual(['200', '400', '401', '403', '405', '406']);
    expect(list.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/audit/entries/{id}']!['get']!.responses).toHaveProperty('404');
    expect(doc.paths['/v1/audit/verify']!['get']!.parameters!.map((p) => p.name).sort()).toEqual([
      'from_seq',
      'to_seq',
    ]);
    expect(doc.components.securitySchemes).toHaveProperty('bearer');
  });

  // Last: it breaks the chain of the shared set.
  it('verifies the chain (with the refusals the tests above recorded), and names the tampered entry', async () => {
    const before = (await audit.query.verify()).checked;
    expect(before).toBeGreaterThan(30);
    const ok = await get('/v1/audit/verify').expect(200);
    // The verify call itself is not a refusal: nothing was added in between.
    expect(ok.body).toEqual({
      ok: true,
      checked: before,
      last_seq: before,
      last_hash: (await audit.query.verify()).lastHash,
    });
    await get('/v1/audit/verify?from_seq=0').expect(400);
    await tamperWithEntry(database.db, 17, 'resource_canonical', '/etc/passwd');
    const res = await get('/v1/audit/verify').expect(200);
    expect(res.body).toMatchObject({
      ok: false,
      checked: 17,
      first_broken: { seq: 17, id: ENTRIES[16]!.id, reason: 'hash_mismatch' },
    });
  });
});

describe('audit-log REST API: its own refusals and lossless values', () => {
  let database: Database<AuditDb>;
  let bus: InProcessBus;
  let audit: RunningAuditLog;
  let operator: string;
  let agent: string;

  beforeAll(async () => {
    database = await openDatabase<AuditDb>({ kind: 'pglite' });
    bus = new InProcessBus();
    audit = await startAuditLog({ db: database, bus, httpPort: 0, verifier: TEST_AUTH });
    operator = await bearerFor(OPERATOR);
    agent = await bearerFor(AGENT);
  }, 120_000);
  afterAll(async () => {
    await audit.close();
    await bus.close();
    await database.close();
  });

  type Body = { reason?: string; decisionId?: string; error: { code: string; message: string } };
  /** The entries of one decision id, as an operator reads them. */
  const entriesOf = async (decisionId: string) =>
    (
      (
        await request(audit.url)
          .get(`/v1/audit/entries?decision_id=${encodeURIComponent(decisionId)}`)
          .set('Authorization', operator)
          .expect(200)
      ).body as { entries: Record<string, unknown>[] }
    ).entries;

  it.each<
    [
      string,
      {
        method: 'get' | 'post' | 'delete';
        path: string;
        auth: 'operator' | 'agent' | 'garbage' | null;
        accept?: string;
      },
      { status: number; reason: string; check: string; principal: string | null; code: string },
    ]
  >([
    [
      '401 without a token',
      { method: 'get', path: '/v1/audit/entries', auth: null },
      {
        status: 401,
        reason: 'PRINCIPAL_UNAUTHENTICATED',
        check: 'audit_api.auth',
        principal: null,
        code: 'PRINCIPAL_UNAUTHENTICATED',
      },
    ],
    [
      '401 with a token that does not verify',
      { method: 'get', path: '/v1/audit/verify', auth: 'garbage' },
      {
        status: 401,
        reason: 'PRINCIPAL_UNAUTHENTICATED',
        check: 'audit_api.auth',
        principal: null,
        code: 'PRINCIPAL_UNAUTHENTICATED',
      },
    ],
    [
      "403 for an agent's token",
      { method: 'get', path: '/v1/audit/entries', auth: 'agent' },
      {
        status: 403,
        reason: 'SCOPE_MISSING',
        check: 'audit_api.operator',
        principal: AGENT.id,
        code: 'FORBIDDEN',
      },
    ],
    [
      '400 for a bad query parameter',
      { method: 'get', path: '/v1/audit/entries?limit=0', auth: 'operator' },
      {
        status: 400,
        reason: 'INPUT_INVALID',
        check: 'audit_api.query',
        principal: OPERATOR.id,
        code: 'INPUT_INVALID',
      },
    ],
    [
      '404 for an unknown entry',
      { method: 'get', path: '/v1/audit/entries/aud_nope', auth: 'operator' },
      {
        status: 404,
        reason: 'INPUT_INVALID',
        check: 'audit_api.entry',
        principal: OPERATOR.id,
        code: 'NOT_FOUND',
      },
    ],
    [
      '404 for an unknown route',
      { method: 'get', path: '/v1/audit/nothing', auth: 'operator' },
      {
        status: 404,
        reason: 'INPUT_INVALID',
        check: 'audit_api.route',
        principal: OPERATOR.id,
        code: 'NOT_FOUND',
      },
    ],
    [
      '405 for a wrong method',
      { method: 'post', path: '/v1/audit/entries', auth: 'operator' },
      {
        status: 405,
        reason: 'INPUT_INVALID',
        check: 'audit_api.method',
        principal: OPERATOR.id,
        code: 'METHOD_NOT_ALLOWED',
      },
    ],
    [
      '401 for a wrong method without a token (authentication first)',
      { method: 'delete', path: '/v1/audit/verify', auth: null },
      {
        status: 401,
        reason: 'PRINCIPAL_UNAUTHENTICATED',
        check: 'audit_api.auth',
        principal: null,
        code: 'PRINCIPAL_UNAUTHENTICATED',
      },
    ],
    [
      '400 for a path that does not decode',
      { method: 'get', path: '/v1/audit/entries/%E0%A4%A', auth: 'operator' },
      {
        status: 400,
        reason: 'INPUT_INVALID',
        check: 'audit_api.request',
        principal: OPERATOR.id,
        code: 'INPUT_INVALID',
      },
    ],
    [
      '406 when Accept admits no JSON',
      { method: 'get', path: '/v1/audit/entries', auth: 'operator', accept: 'text/html' },
      {
        status: 406,
        reason: 'INPUT_INVALID',
        check: 'audit_api.accept',
        principal: OPERATOR.id,
        code: 'NOT_ACCEPTABLE',
      },
    ],
  ])('answers %s with a typed reason and records it', async (_label, req, want) => {
    let r = request(audit.url)[req.method](req.path);
    const auth = { operator, agent, garbage: 'Bearer not-a-jwt', none: '' };
    if (req.auth !== null) r = r.set('Authorization', auth[req.auth]);
    if (req.accept !== undefined) r = r.set('Accept', req.accept);
    const res = await r.expect(want.status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.body as Body;
    expect(body).toEqual({
      reason: want.reason,
      decisionId: expect.stringMatching(/^dec_/) as string,
      error: { code: want.code, message: expect.any(String) as string },
    });
    if (want.status === 405) expect(res.headers['allow']).toBe('GET, HEAD');
    // Committed before the reply: the decision id finds exactly one entry, at once.
    const entries = await entriesOf(body.decisionId!);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      decision_id: body.decisionId,
      endpoint_family: 'protocol',
      outcome: 'deny',
      reason: want.reason,
      check: want.check,
      principal_id: want.principal,
      source: 'audit-log',
      resource_raw: req.path,
      resource_canonical: `${req.method.toUpperCase()} ${req.path.split('?')[0]}`,
    });
  });

  it('the allowed neighbours leave nothing: a served query, health and a readiness probe', async () => {
    const before = (await audit.query.verify()).checked;
    await request(audit.url).get('/v1/audit/entries').set('Authorization', operator).expect(200);
    await request(audit.url)
      .get('/v1/audit/entries')
      .set('Authorization', operator)
      .set('Accept', 'text/html, application/json;q=0.5')
      .expect(200);
    await request(audit.url).get('/healthz').expect(200);
    await request(audit.url).get('/readyz').expect(200);
    expect((await audit.query.verify()).checked).toBe(before);
  });

  it('stores and returns NUL, 1 MiB and escape-like values exactly, and filters match them', async () => {
    const mib = `${'y'.repeat(1024 * 1024 - 1)}\u0000`;
    const nul = testEntry(101, {
      principalId: 'agent\u0000root',
      capabilityId: 'fs/read\u0000',
      traceId: 'trace\u0000x',
      resourceRaw: mib,
    });
    // Its stored escape, sent as a value of its own: must not match the NUL entry, nor it this.
    const lookalike = testEntry(102, {
      principalId: 'agent\\u0000root',
      capabilityId: 'fs/read\\u0000',
      traceId: 'trace\\u0000x',
    });
    const long = testEntry(103, { principalId: `p${'q'.repeat(3000)}` });
    await publishEntries(bus, [nul, lookalike, long]);
    await until(
      async () =>
        (await audit.query.verify()).checked >= 2 && (await entriesOf(nul.decisionId)).length === 1,
      'both entries',
    );
    const find = async (query: string) =>
      (
        (
          await request(audit.url)
            .get(`/v1/audit/entries?${query}`)
            .set('Authorization', operator)
            .expect(200)
        ).body as { entries: Record<string, unknown>[] }
      ).entries;
    for (const [param, value] of [
      ['principal', 'agent\u0000root'],
      ['capability', 'fs/read\u0000'],
      ['trace_id', 'trace\u0000x'],
    ] as const) {
      const got = await find(`${param}=${encodeURIComponent(value)}`);
      expect(got.map((e) => e['id'])).toEqual([nul.id]);
      const plain = await find(
        `${param}=${encodeURIComponent(value.replace('\u0000', '\\u0000'))}`,
      );
      expect(plain.map((e) => e['id'])).toEqual([lookalike.id]);
    }
    // Longer than the 512 characters the index covers: found by the whole value.
    await until(async () => (await find(`principal=${long.principalId!}`)).length === 1, 'long');
    expect(await find(`principal=${long.principalId!.slice(0, 600)}`)).toEqual([]);
    const one = (
      await request(audit.url)
        .get(`/v1/audit/entries/${nul.id}`)
        .set('Authorization', operator)
        .expect(200)
    ).body as Record<string, unknown>;
    expect(one).toMatchObject({
      principal_id: 'agent\u0000root',
      capability_id: 'fs/read\u0000',
      trace_id: 'trace\u0000x',
    });
    expect(one['resource_raw']).toBe(mib);
    expect(await audit.query.verify()).toMatchObject({ ok: true });
  });

  it('keeps a lone surrogate from the publisher to the REST JSON (as a \\u escape) and the chain verifies', async () => {
    const lone = testEntry(201, {
      principalId: 'agent-\ud800',
      resourceRaw: '\udc00/x',
      handleIds: ['h-\ud83d'],
    });
    // The whole way: a service's publisher, the stream (escaped and marked, since a proto3 string
    // cannot carry it), ingest, the store, the REST API.
    const publisher = await createAuditPublisher(bus, { source: 'edge' });
    publisher.record(lone);
    await publisher.flush(5000);
    await publisher.close();
    await until(async () => (await entriesOf(lone.decisionId)).length === 1, 'the entry');
    const res = await request(audit.url)
      .get(`/v1/audit/entries/${lone.id}`)
      .set('Authorization', operator)
      .expect(200);
    expect(res.text).toContain('"principal_id":"agent-\\ud800"');
    expect(res.body).toMatchObject({
      principal_id: 'agent-\ud800',
      resource_raw: '\udc00/x',
      handle_ids: ['h-\ud83d'],
    });
    expect(await audit.query.verify()).toMatchObject({ ok: true });
  });

  it('detects an edit of an escaped row like any other (the hash covers the original values)', async () => {
    const e = testEntry(301, { resourceRaw: 'secret\u0000' });
    const repo = new AuditEntryRepository(database.db);
    const { seq } = (await repo.append(e, 'test', Date.now())) as { seq: number };
    // Stored as `secret\u0000` (escaped); rewrite it to another escape.
    await tamperWithEntry(database.db, seq, 'resource_raw', 'public\\u0000');
    expect((await audit.query.verify()).firstBroken).toMatchObject({
      seq,
      reason: 'hash_mismatch',
    });
  });
});
