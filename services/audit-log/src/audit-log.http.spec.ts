import { createHash } from 'node:crypto';
import request from 'supertest';
import { canonicalJson, type AuditEntry, type ReasonCode } from '@hcp/core';
import { InProcessBus, mintToken, openDatabase, type Database } from '@hcp/platform';
import { startAuditLog, type RunningAuditLog } from './audit-log';
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
  });
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
        error: { code: 'PRINCIPAL_UNAUTHENTICATED', message: 'no bearer token' },
      });
      await get(path, 'Bearer not-a-jwt').expect(401);
      const forbidden = await get(path, agent).expect(403);
      expect(forbidden.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
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

  it('serves health, readiness and a JSON error for an unknown route without a token', async () => {
    await get('/healthz', null).expect(200, { status: 'ok' });
    await get('/readyz', null).expect(200, { status: 'ready' });
    const res = await get('/v1/nothing', null).expect(404);
    expect(res.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
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
    expect(Object.keys(list.responses).sort()).toEqual(['200', '400', '401', '403']);
    expect(list.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/audit/entries/{id}']!['get']!.responses).toHaveProperty('404');
    expect(doc.paths['/v1/audit/verify']!['get']!.parameters!.map((p) => p.name).sort()).toEqual([
      'from_seq',
      'to_seq',
    ]);
    expect(doc.components.securitySchemes).toHaveProperty('bearer');
  });

  // Last: it breaks the chain of the shared set.
  it('verifies the chain, and names the tampered entry', async () => {
    await get('/v1/audit/verify').expect(200, {
      ok: true,
      checked: 30,
      last_seq: 30,
      last_hash: (await audit.query.get(ENTRIES[29]!.id)).hash,
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
