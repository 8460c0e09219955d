import { sql } from 'kysely';
import { HcpError, isHandleId, newHandleId, type AuditEntry, type ReasonCode } from '@hcp/core';
import { ConfigError } from '@hcp/platform';
import { testPostgresUrl, TEST_POSTGRES_URL_VARIABLE } from '@hcp/platform/testing';
import type { StoredHandle } from './handle.repository';
import type { PutInput } from './handle.service';
import { assertKeyringCoversLiveRows } from './index';
import { VaultKeyring } from './keyring';
import { PayloadKeyUnavailableError } from './payload-cipher';
import { REDACTED } from './redaction';
import {
  serviceHarness,
  T0,
  TEST_POSTGRES_URL_VARIABLE as VAULT_POSTGRES_URL_VARIABLE,
  type ServiceHarness,
} from './testing/harness';

/** The harness runs on PostgreSQL instead of PGlite (see freshDatabase in the harness). */
const onPostgres =
  testPostgresUrl([VAULT_POSTGRES_URL_VARIABLE, TEST_POSTGRES_URL_VARIABLE]) !== undefined;

const LIMITS = {
  maxHandleBytes: 1000,
  maxPrincipalBytes: 2500,
  defaultTtlMs: 60_000,
  maxTtlMs: 600_000,
  defaultPeekBytes: 64,
  maxPeekBytes: 256,
  expiredRetentionMs: 30_000,
};

const SECRET_TEXT = 'CONFIDENTIAL quarterly numbers 4711';

/** The HcpError a promise rejects with (fails the test if it resolves or throws something else). */
async function refusal(p: Promise<unknown>): Promise<HcpError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof HcpError)) throw new Error(`expected an HcpError, got ${String(err)}`);
  return err;
}

async function expectRefused(p: Promise<unknown>, reason: ReasonCode, field?: string) {
  const err = await refusal(p);
  expect(err.reason).toBe(reason);
  if (field !== undefined) expect(err.details['field']).toBe(field);
  return err;
}

describe('HandleService', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await serviceHarness({ limits: LIMITS });
  });
  afterAll(() => h.close());
  beforeEach(() => h.reset());

  const input = (over: Partial<PutInput> = {}): PutInput => ({
    ownerPrincipalId: 'agent-1',
    producingCapability: 'fs/read_file',
    labels: { provider: 'fs', sensitivity: 'internal' },
    payload: Buffer.from(`${SECRET_TEXT}\napi_key=abc123 region=eu`),
    ...over,
  });
  const put = (over: Partial<PutInput> = {}) => h.service.put(input(over));
  const rowCount = async () =>
    Number(
      (await sql<{ n: number }>`select count(*)::int as n from handles`.execute(h.database.db))
        .rows[0]?.n,
    );
  const lastAudit = (): AuditEntry => {
    const e = h.audit.entries[h.audit.entries.length - 1];
    if (e === undefined) throw new Error('no audit entry');
    return e;
  };

  describe('Put', () => {
    it('stores metadata with an unguessable id, the default TTL and the payload size', async () => {
      const a = await put();
      const b = await put();
      expect(isHandleId(a.id)).toBe(true);
      expect(a.id).not.toBe(b.id);
      expect(a).toEqual({
        id: a.id,
        ownerPrincipalId: 'agent-1',
        producingCapability: 'fs/read_file',
        labels: { provider: 'fs', sensitivity: 'internal' },
        createdAt: T0,
        expiresAt: T0 + 60_000,
        sizeBytes: input().payload.length,
      });
      // Put is not a decision the vault makes; the edge audits the tools/call that produced it.
      expect(h.audit.entries).toEqual([]);
    });

    it('caps the TTL at the maximum and refuses a non-positive one', async () => {
      expect((await put({ ttlMs: 10 * 600_000 })).expiresAt).toBe(T0 + 600_000);
      expect((await put({ ttlMs: 5 })).expiresAt).toBe(T0 + 5);
      await expectRefused(put({ ttlMs: 0 }), 'INPUT_INVALID', 'ttl');
      await expectRefused(put({ ttlMs: -1 }), 'INPUT_INVALID', 'ttl');
    });

    it.each([
      [{ ownerPrincipalId: '' }, 'ownerPrincipalId'],
      [{ ownerPrincipalId: 'a\nb' }, 'ownerPrincipalId'],
      [{ ownerPrincipalId: 'x'.repeat(257) }, 'ownerPrincipalId'],
      [{ producingCapability: '' }, 'producingCapability'],
      [{ producingCapability: 'read_file' }, 'producingCapability'],
      [{ producingCapability: 'fs/a/b' }, 'producingCapability'],
      [{ labels: { 'bad key': 'x' } }, 'labels["bad key"]'],
      [{ labels: { k: 'v'.repeat(257) } }, 'labels[k]'],
      [
        { labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) },
        'labels',
      ],
    ] as [Partial<PutInput>, string][])('refuses %j naming %s', async (over, field) => {
      await expectRefused(put(over), 'INPUT_INVALID', field);
      expect(await rowCount()).toBe(0);
    });

    it('keeps a label named __proto__ as a label', async () => {
      const labels = JSON.parse('{"__proto__": "x", "provider": "fs"}') as Record<string, string>;
      const handle = await put({ labels });
      expect(Object.keys(handle.labels).sort()).toEqual(['__proto__', 'provider']);
      const peeked = await h.service.peek({
        principalId: 'agent-1',
        handleId: handle.id,
        maxBytes: 0,
      });
      expect(Object.getOwnPropertyDescriptor(peeked.handle.labels, '__proto__')?.value).toBe('x');
    });

    it('refuses a payload over the per-handle limit, whole, and stores nothing', async () => {
      expect((await put({ payload: Buffer.alloc(1000, 1) })).sizeBytes).toBe(1000);
      const err = await expectRefused(put({ payload: Buffer.alloc(1001, 1) }), 'PAYLOAD_TOO_LARGE');
      expect(err.details).toEqual({ limit: 'per_handle', limitBytes: 1000, sizeBytes: 1001 });
      expect(await rowCount()).toBe(1);
    });

    it('refuses a payload that would take the principal over its live total, and stores nothing', async () => {
      await put({ payload: Buffer.alloc(1000), ttlMs: 10_000 });
      await put({ payload: Buffer.alloc(1000) });
      const err = await expectRefused(put({ payload: Buffer.alloc(600) }), 'PAYLOAD_TOO_LARGE');
      expect(err.details).toEqual({
        limit: 'per_principal',
        limitBytes: 2500,
        sizeBytes: 600,
        usedBytes: 2000,
      });
      expect(await rowCount()).toBe(2);
      // Exactly at the limit is fine, and other principals have their own total.
      await put({ payload: Buffer.alloc(500) });
      await put({ ownerPrincipalId: 'agent-2', payload: Buffer.alloc(1000) });
      // Expired handles stop counting (even before the sweeper purges them).
      h.clock.advance(10_000);
      expect((await put({ payload: Buffer.alloc(1000) })).sizeBytes).toBe(1000);
    });

    it('does not let concurrent Puts overshoot the per-principal total', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => put({ payload: Buffer.alloc(1000) })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      expect(await rowCount()).toBe(2);
    });
  });

  describe('Put as one statement, grouped (ADR 0005 §1)', () => {
    /** The sizes of the groups the service sent to the database, in order. */
    const groups = () => {
      const spy = jest.spyOn(h.repository, 'putWithinQuota');
      return {
        sizes: () => spy.mock.calls.map(([handles]) => handles.length),
        restore: () => spy.mockRestore(),
      };
    };
    const payloadOf = async (principalId: string, handleId: string) =>
      (await h.service.resolveForPipe({ principalId, handleId, decisionId: 'dec_1' })).payload;

    it('allows a Put that brings the live total exactly to the limit and refuses one byte more', async () => {
      await put({ payload: Buffer.alloc(1000) });
      await put({ payload: Buffer.alloc(1000) });
      const err = await expectRefused(put({ payload: Buffer.alloc(501) }), 'PAYLOAD_TOO_LARGE');
      expect(err.details).toEqual({
        limit: 'per_principal',
        limitBytes: 2500,
        sizeBytes: 501,
        usedBytes: 2000,
      });
      expect(err.message).toBe(
        "payload of 501 bytes would bring the principal's live handles to 2501 bytes; the per-principal limit is 2500",
      );
      expect((await put({ payload: Buffer.alloc(500) })).sizeBytes).toBe(500);
      expect(await rowCount()).toBe(3);
    });

    it('sends a Put at once when none is in flight, and groups those arriving meanwhile', async () => {
      const g = groups();
      try {
        await put();
        await put();
        expect(g.sizes()).toEqual([1, 1]);
        const all = [put(), put(), put(), put()];
        await Promise.all(all);
        expect(g.sizes()).toEqual([1, 1, 1, 3]);
      } finally {
        g.restore();
      }
    });

    it('counts earlier Puts of the same group: only the one crossing the quota is refused', async () => {
      const g = groups();
      try {
        const first = put({ payload: Buffer.alloc(1000, 1) }); // in flight alone
        const second = put({ payload: Buffer.alloc(1000, 2) }); // 2000: allowed
        const third = put({ payload: Buffer.alloc(600, 3) }); // 2600: refused
        const fourth = put({ payload: Buffer.alloc(500, 4) }); // 2500: allowed
        const [a, b, c, d] = await Promise.allSettled([first, second, third, fourth]);
        expect(g.sizes()).toEqual([1, 3]);
        expect([a, b, c, d].map((r) => r?.status)).toEqual([
          'fulfilled',
          'fulfilled',
          'rejected',
          'fulfilled',
        ]);
        const err = await expectRefused(third, 'PAYLOAD_TOO_LARGE');
        expect(err.details).toEqual({
          limit: 'per_principal',
          limitBytes: 2500,
          sizeBytes: 600,
          usedBytes: 2000,
        });
        expect(await rowCount()).toBe(3);
        const stored = await fourth;
        expect(await payloadOf('agent-1', stored.id)).toEqual(Buffer.alloc(500, 4));
      } finally {
        g.restore();
      }
    });

    it('keeps each principal of a group on its own total', async () => {
      const g = groups();
      try {
        const puts = [
          put({ ownerPrincipalId: 'agent-9', payload: Buffer.alloc(10) }), // in flight alone
          put({ ownerPrincipalId: 'agent-3', payload: Buffer.alloc(1000, 3) }),
          put({ ownerPrincipalId: 'agent-1', payload: Buffer.alloc(1000, 1) }),
          put({ ownerPrincipalId: 'agent-2', payload: Buffer.alloc(1000, 2) }),
          put({ ownerPrincipalId: 'agent-1', payload: Buffer.alloc(1000, 1) }),
          put({ ownerPrincipalId: 'agent-3', payload: Buffer.alloc(1000, 3) }),
          put({ ownerPrincipalId: 'agent-2', payload: Buffer.alloc(1000, 2) }),
          put({ ownerPrincipalId: 'agent-1', payload: Buffer.alloc(501, 1) }), // 2501: refused
          put({ ownerPrincipalId: 'agent-2', payload: Buffer.alloc(500, 2) }), // 2500: allowed
        ];
        const results = await Promise.allSettled(puts);
        expect(g.sizes()).toEqual([1, 8]);
        expect(results.map((r) => r.status)).toEqual([
          ...Array<string>(7).fill('fulfilled'),
          'rejected',
          'fulfilled',
        ]);
        await expectRefused(puts[7]!, 'PAYLOAD_TOO_LARGE');
        for (const [i, r] of results.entries()) {
          if (r.status !== 'fulfilled') continue;
          const owner = r.value.ownerPrincipalId;
          expect(await payloadOf(owner, r.value.id)).toEqual(
            i === 0 ? Buffer.alloc(10) : Buffer.alloc(r.value.sizeBytes, Number(owner.slice(-1))),
          );
        }
        const { rows } = await sql<{ owner: string; total: number }>`
          select owner_principal_id as owner, sum(size_bytes)::int as total from handles
          group by owner_principal_id order by 1`.execute(h.database.db);
        expect(rows).toEqual([
          { owner: 'agent-1', total: 2000 },
          { owner: 'agent-2', total: 2500 },
          { owner: 'agent-3', total: 2000 },
          { owner: 'agent-9', total: 10 },
        ]);
      } finally {
        g.restore();
      }
    });

    it('fails every Put of a group whose statement fails, with the error a lone Put gets, and stores none', async () => {
      // A real database error raised by the insert of the group's second Put, after its first
      // was inserted: the statement is atomic, so that first row must not stay either.
      await sql`create function handles_test_boom() returns trigger language plpgsql as $$
        begin
          if new.producing_capability = 'fs/boom' then
            raise exception 'boom for %', new.owner_principal_id;
          end if;
          return new;
        end $$`.execute(h.database.db);
      await sql`create trigger handles_test_boom before insert on handles
        for each row execute function handles_test_boom()`.execute(h.database.db);
      const g = groups();
      try {
        const lone: unknown = await put({ producingCapability: 'fs/boom' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(lone).toBeInstanceOf(Error);
        expect(lone).not.toBeInstanceOf(HcpError);
        expect((lone as Error).message).toMatch(/boom for agent-1/);
        const errors = await Promise.allSettled([
          put(), // in flight alone: stored
          put({ ownerPrincipalId: 'agent-2' }),
          put({ producingCapability: 'fs/boom' }),
          put({ ownerPrincipalId: 'agent-3' }),
        ]);
        expect(g.sizes()).toEqual([1, 1, 3]);
        expect(errors.map((r) => r.status)).toEqual([
          'fulfilled',
          'rejected',
          'rejected',
          'rejected',
        ]);
        const reasons = errors.slice(1).map((r) => (r as PromiseRejectedResult).reason as Error);
        for (const reason of reasons) {
          expect(reason).toBe(reasons[0]);
          expect(reason).not.toBeInstanceOf(HcpError);
          expect(reason.message).toBe((lone as Error).message);
        }
        expect(await rowCount()).toBe(1);
        // The next group goes through.
        await Promise.all([
          put({ ownerPrincipalId: 'agent-2' }),
          put({ ownerPrincipalId: 'agent-3' }),
        ]);
        expect(await rowCount()).toBe(3);
      } finally {
        g.restore();
        await sql`drop trigger handles_test_boom on handles`.execute(h.database.db);
        await sql`drop function handles_test_boom()`.execute(h.database.db);
      }
    });

    it('stores every one of many concurrent Puts, each readable by its owner', async () => {
      const g = groups();
      try {
        const inputs = Array.from({ length: 60 }, (_, i) => ({
          ownerPrincipalId: `agent-${i % 7}`,
          payload: Buffer.from(`payload ${i} ${'x'.repeat(i)}`),
        }));
        const handles = await Promise.all(inputs.map((i) => put(i)));
        expect(new Set(handles.map((x) => x.id)).size).toBe(60);
        expect(await rowCount()).toBe(60);
        for (const [i, handle] of handles.entries())
          expect(await payloadOf(inputs[i]!.ownerPrincipalId, handle.id)).toEqual(
            inputs[i]!.payload,
          );
        // Grouped: fewer statements than Puts, and every Put in exactly one of them.
        expect(g.sizes().length).toBeLessThan(60);
        expect(g.sizes().reduce((a, b) => a + b, 0)).toBe(60);
      } finally {
        g.restore();
      }
    });

    // PGlite has one connection, so two statements never wait on each other's locks there.
    (onPostgres ? it : it.skip)(
      'locks the principals of a group in one order: opposite groups do not deadlock',
      async () => {
        const owners = ['agent-1', 'agent-2', 'agent-3', 'agent-4'];
        const stored = (owner: string): StoredHandle => ({
          record: {
            id: newHandleId(),
            ownerPrincipalId: owner,
            producingCapability: 'fs/read_file',
            labels: {},
            createdAt: T0,
            expiresAt: T0 + 60_000,
            sizeBytes: 1,
          },
          sealed: {
            keyId: 'k1',
            iv: Buffer.alloc(12),
            ciphertext: Buffer.alloc(1),
            authTag: Buffer.alloc(16),
          },
        });
        const waiting = async () =>
          (
            await sql<{ n: number }>`select count(*)::int as n from pg_locks
              where locktype = 'advisory' and not granted`.execute(h.database.db)
          ).rows[0]?.n;
        let release = () => {};
        const released = new Promise<void>((r) => (release = r));
        let held = () => {};
        const holding = new Promise<void>((r) => (held = r));
        // Another transaction holds the two middle principals, so both groups have taken a lock
        // and wait when it lets go. Locking in arrival order, each would then want the other's.
        const blocker = h.database.db.transaction().execute(async (tx) => {
          for (const owner of ['agent-2', 'agent-3'])
            await sql`select pg_advisory_xact_lock(hashtextextended(${`hcp.vault:${owner}`}, 0))`.execute(
              tx,
            );
          held();
          await released;
        });
        await holding;
        const forward = h.repository.putWithinQuota(owners.map(stored), 2500);
        const backward = h.repository.putWithinQuota([...owners].reverse().map(stored), 2500);
        for (let i = 0; i < 200 && (await waiting()) !== 2; i++)
          await new Promise((r) => setTimeout(r, 10));
        expect(await waiting()).toBe(2);
        release();
        await blocker;
        const outcomes = await Promise.all([forward, backward]);
        expect(outcomes.flat().every((o) => o.stored)).toBe(true);
        expect(await rowCount()).toBe(8);
      },
    );
  });

  describe('Peek and ResolveForPipe', () => {
    it('gives the owner a bounded, redacted preview and audits the allow', async () => {
      const handle = await put();
      const r = await h.service.peek({
        principalId: 'agent-1',
        handleId: handle.id,
        maxBytes: 200,
      });
      expect(r.handle).toEqual(handle);
      expect(r.preview).toBe(`${SECRET_TEXT}\napi_key=${REDACTED} region=eu`);
      expect(r.redactionCount).toBe(1);
      expect(r.truncated).toBe(false);
      expect(h.audit.entries).toEqual([
        {
          id: expect.stringMatching(/^aud_/) as unknown,
          time: T0,
          decisionId: expect.stringMatching(/^dec_/) as unknown,
          principalId: 'agent-1',
          endpointFamily: 'handle/peek',
          outcome: 'allow',
          reason: 'ALLOWED',
          check: 'vault.peek',
          handleIds: [handle.id],
        },
      ]);
    });

    it('bounds the preview: 0 is the default, larger is capped, negative is refused', async () => {
      const handle = await put({ payload: Buffer.alloc(900, 'x') });
      const peek = (maxBytes: number) =>
        h.service.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes });
      expect((await peek(0)).preview).toHaveLength(64);
      expect((await peek(10)).preview).toHaveLength(10);
      const capped = await peek(100_000);
      expect(capped.preview).toHaveLength(256);
      expect(capped.truncated).toBe(true);
      await expectRefused(peek(-1), 'INPUT_INVALID', 'maxBytes');
      expect(lastAudit()).toMatchObject({
        outcome: 'deny',
        reason: 'INPUT_INVALID',
        rule: 'input_invalid',
      });
    });

    it('gives the owner the exact payload for a pipe and audits it with the decision id', async () => {
      const payload = Buffer.from([0, 1, 2, 255, 254]);
      const handle = await put({ payload });
      const r = await h.service.resolveForPipe({
        principalId: 'agent-1',
        handleId: handle.id,
        decisionId: 'dec_1',
      });
      expect(r.payload.equals(payload)).toBe(true);
      expect(r.handle).toEqual(handle);
      expect(lastAudit()).toMatchObject({
        endpointFamily: 'handle/pipe',
        outcome: 'allow',
        reason: 'ALLOWED',
        decisionId: 'dec_1',
        principalId: 'agent-1',
        check: 'vault.resolve_for_pipe',
        handleIds: [handle.id],
      });
    });

    it('refuses another principal with HANDLE_NOT_OWNED and audits the attempt', async () => {
      const handle = await put();
      h.audit.take();
      const peeked = await expectRefused(
        h.service.peek({ principalId: 'agent-2', handleId: handle.id, maxBytes: 0 }),
        'HANDLE_NOT_OWNED',
      );
      const resolved = await expectRefused(
        h.service.resolveForPipe({
          principalId: 'agent-2',
          handleId: handle.id,
          decisionId: 'dec_9',
        }),
        'HANDLE_NOT_OWNED',
      );
      // The refusal names its entry: a peek's its own id, a pipe read's the DecidePipe decision.
      expect(peeked.details['decisionId']).toMatch(/^dec_/);
      expect(resolved.details['decisionId']).toBe('dec_9');
      expect(h.audit.take()).toEqual([
        expect.objectContaining({
          decisionId: peeked.details['decisionId'],
          principalId: 'agent-2',
          endpointFamily: 'handle/peek',
          outcome: 'deny',
          reason: 'HANDLE_NOT_OWNED',
          invariant: 'I4',
          rule: 'owner_mismatch',
          handleIds: [handle.id],
        }),
        expect.objectContaining({
          principalId: 'agent-2',
          endpointFamily: 'handle/pipe',
          outcome: 'deny',
          reason: 'HANDLE_NOT_OWNED',
          decisionId: 'dec_9',
          rule: 'owner_mismatch',
        }),
      ]);
    });

    it('answers a nonexistent id exactly as a foreign one, so ids cannot be probed', async () => {
      const handle = await put();
      const foreign = await refusal(
        h.service.peek({ principalId: 'agent-2', handleId: handle.id, maxBytes: 0 }),
      );
      // Same handle id, row gone: what an attacker guessing ids would see.
      await sql`delete from handles`.execute(h.database.db);
      const missing = await refusal(
        h.service.peek({ principalId: 'agent-2', handleId: handle.id, maxBytes: 0 }),
      );
      // Each names its own audit entry; nothing else tells them apart.
      const { decisionId: missingId, ...missingDetails } = missing.details;
      const { decisionId: foreignId, ...foreignDetails } = foreign.details;
      expect([missing.reason, missing.message, missingDetails]).toEqual([
        foreign.reason,
        foreign.message,
        foreignDetails,
      ]);
      expect(h.audit.entries.map((e) => e.decisionId)).toEqual([foreignId, missingId]);
      // The audit (operators only) still tells them apart.
      expect(h.audit.entries.map((e) => e.rule)).toEqual(['owner_mismatch', 'handle_unknown']);
    });

    it('refuses an expired handle with HANDLE_EXPIRED to its owner only', async () => {
      const handle = await put({ ttlMs: 1000 });
      h.clock.advance(1000);
      await expectRefused(
        h.service.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes: 0 }),
        'HANDLE_EXPIRED',
      );
      await expectRefused(
        h.service.resolveForPipe({ principalId: 'agent-1', handleId: handle.id, decisionId: 'd' }),
        'HANDLE_EXPIRED',
      );
      await expectRefused(
        h.service.peek({ principalId: 'agent-2', handleId: handle.id, maxBytes: 0 }),
        'HANDLE_NOT_OWNED',
      );
      expect(h.audit.entries.map((e) => [e.reason, e.rule])).toEqual([
        ['HANDLE_EXPIRED', 'expired'],
        ['HANDLE_EXPIRED', 'expired'],
        ['HANDLE_NOT_OWNED', 'owner_mismatch'],
      ]);
    });

    it('refuses malformed requests with INPUT_INVALID and audits only the fields that passed', async () => {
      const handle = await put();
      await expectRefused(
        h.service.peek({ principalId: 'agent-1', handleId: 'hdl_short', maxBytes: 0 }),
        'INPUT_INVALID',
        'handleId',
      );
      await expectRefused(
        h.service.peek({ principalId: 'bad\u0000id', handleId: handle.id, maxBytes: 0 }),
        'INPUT_INVALID',
        'principalId',
      );
      await expectRefused(
        h.service.resolveForPipe({ principalId: 'agent-1', handleId: handle.id, decisionId: '' }),
        'INPUT_INVALID',
        'decisionId',
      );
      const [a, b, c] = h.audit.take();
      expect(a).toMatchObject({ principalId: 'agent-1', handleIds: [], reason: 'INPUT_INVALID' });
      expect(b).not.toHaveProperty('principalId');
      expect(b).toMatchObject({ handleIds: [handle.id], outcome: 'deny' });
      expect(c).toMatchObject({ endpointFamily: 'handle/pipe', principalId: 'agent-1' });
      // No valid DecidePipe id to record it under: the refusal gets its own.
      expect(c?.decisionId).toMatch(/^dec_/);
    });

    it('refuses to act unaudited: a full audit buffer gives AUDIT_UNAVAILABLE and no data', async () => {
      const handle = await put();
      h.audit.full = true;
      await expectRefused(
        h.service.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes: 0 }),
        'AUDIT_UNAVAILABLE',
      );
      await expectRefused(
        h.service.resolveForPipe({ principalId: 'agent-1', handleId: handle.id, decisionId: 'd' }),
        'AUDIT_UNAVAILABLE',
      );
      await expectRefused(
        h.service.delete({ principalId: 'agent-1', handleId: handle.id }),
        'AUDIT_UNAVAILABLE',
      );
      expect(await rowCount()).toBe(1);
    });
  });

  describe('encryption at rest', () => {
    const peekAs = (principalId: string, handleId: string) =>
      h.service.peek({ principalId, handleId, maxBytes: 200 });

    it('stores no plaintext: neither in the payload columns nor anywhere in the row', async () => {
      const handle = await put();
      const plain = Buffer.from(SECRET_TEXT);
      const { rows } = await sql<{
        key_id: string;
        iv: Uint8Array;
        ciphertext: Uint8Array;
        auth_tag: Uint8Array;
        whole: string;
        found: number;
      }>`select key_id, iv, ciphertext, auth_tag, handles::text as whole,
                position(${plain}::bytea in ciphertext) as found
         from handles where id = ${handle.id}`.execute(h.database.db);
      const row = rows[0]!;
      expect(row.key_id).toBe('k1');
      expect(row.iv).toHaveLength(12);
      expect(row.auth_tag).toHaveLength(16);
      expect(row.ciphertext).toHaveLength(input().payload.length);
      expect(Buffer.from(row.ciphertext).includes(plain)).toBe(false);
      expect(row.found).toBe(0);
      expect(row.whole).not.toContain(SECRET_TEXT);
      expect(row.whole).not.toContain(plain.toString('hex'));
      expect(row.whole).not.toContain('abc123');
    });

    it.each(['ciphertext', 'iv', 'auth_tag'])(
      'a flipped bit in %s makes reads fail with HANDLE_NOT_OWNED, audited, not a crash',
      async (column) => {
        const handle = await put();
        await sql`update handles set ${sql.ref(column)} = set_byte(${sql.ref(column)}, 0, get_byte(${sql.ref(column)}, 0) # 1)
                  where id = ${handle.id}`.execute(h.database.db);
        await expectRefused(peekAs('agent-1', handle.id), 'HANDLE_NOT_OWNED');
        await expectRefused(
          h.service.resolveForPipe({
            principalId: 'agent-1',
            handleId: handle.id,
            decisionId: 'd',
          }),
          'HANDLE_NOT_OWNED',
        );
        expect(h.audit.entries.map((e) => [e.outcome, e.rule])).toEqual([
          ['deny', 'payload_unauthenticated'],
          ['deny', 'payload_unauthenticated'],
        ]);
      },
    );

    it('a row moved to another owner does not open for the new "owner"', async () => {
      const handle = await put();
      await sql`update handles set owner_principal_id = 'agent-2' where id = ${handle.id}`.execute(
        h.database.db,
      );
      await expectRefused(peekAs('agent-2', handle.id), 'HANDLE_NOT_OWNED');
      await expectRefused(peekAs('agent-1', handle.id), 'HANDLE_NOT_OWNED');
      expect(h.audit.entries.map((e) => e.rule)).toEqual([
        'payload_unauthenticated',
        'owner_mismatch',
      ]);
    });

    it('a row copied under another handle id does not open', async () => {
      const handle = await put();
      const copy = 'hdl_CCCCCCCCCCCCCCCCCCCCCC';
      await sql`insert into handles
                select ${copy}, owner_principal_id, producing_capability, labels, created_at, expires_at,
                       size_bytes, key_id, iv, ciphertext, auth_tag
                from handles where id = ${handle.id}`.execute(h.database.db);
      await expectRefused(peekAs('agent-1', copy), 'HANDLE_NOT_OWNED');
      expect((await peekAs('agent-1', handle.id)).preview).toContain(SECRET_TEXT);
    });
  });

  describe('key rotation', () => {
    const keyIds = async () =>
      (
        await sql<{ key_id: string }>`select key_id from handles order by id`.execute(h.database.db)
      ).rows.map((r) => r.key_id);

    it('reads old rows after the switch, re-seals them with rotateKeys, then works without the old key', async () => {
      const old = await Promise.all(
        [1, 2, 3, 4, 5].map((i) => put({ payload: Buffer.from(`row ${i}`) })),
      );
      const expired = await put({ ttlMs: 1000, payload: Buffer.from('short-lived') });
      h.clock.advance(1000);
      expect(new Set(await keyIds())).toEqual(new Set(['k1']));

      // 1. add k2 and make it active: old rows still read, new rows use k2.
      const both = h.withKeys(
        VaultKeyring.of({ k1: h.keys['k1']!, k2: h.keys['k2']! }, 'k2'),
        LIMITS,
      );
      const fresh = await both.put(input({ payload: Buffer.from('new row') }));
      for (const [i, handle] of old.entries()) {
        const r = await both.resolveForPipe({
          principalId: 'agent-1',
          handleId: handle.id,
          decisionId: 'd',
        });
        expect(r.payload.toString()).toBe(`row ${i + 1}`);
      }
      // Removing k1 now would strand live rows: the start refuses, naming the variable.
      const onlyK2 = VaultKeyring.of({ k2: h.keys['k2']! }, 'k2');
      await expect(assertKeyringCoversLiveRows(h.database.db, onlyK2, h.clock())).rejects.toThrow(
        ConfigError,
      );
      await expect(assertKeyringCoversLiveRows(h.database.db, onlyK2, h.clock())).rejects.toThrow(
        /HCP_VAULT_KEYS: .*k1/,
      );
      // ... and a replica that lacks k1 answers with a typed error, not a crash.
      await expect(
        h
          .withKeys(onlyK2, LIMITS)
          .peek({ principalId: 'agent-1', handleId: old[0]!.id, maxBytes: 0 }),
      ).rejects.toThrow(PayloadKeyUnavailableError);

      // 2. rotate in batches of 2: every live k1 row, and only those.
      expect(await both.rotateKeys(2)).toBe(5);
      expect(await both.rotateKeys(2)).toBe(0);
      const rows = await sql<{
        id: string;
        key_id: string;
      }>`select id, key_id from handles`.execute(h.database.db);
      for (const r of rows.rows) expect(r.key_id).toBe(r.id === expired.id ? 'k1' : 'k2');

      // 3. drop k1: the boot check passes and every live handle still reads.
      await assertKeyringCoversLiveRows(h.database.db, onlyK2, h.clock());
      const after = h.withKeys(onlyK2, LIMITS);
      for (const handle of [...old, fresh]) {
        const r = await after.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes: 0 });
        expect(r.preview).toMatch(/^(row \d|new row)$/);
      }
    });

    it('leaves a row it cannot open under its old key and carries on', async () => {
      const good = await put({ payload: Buffer.from('good') });
      const bad = await put({ payload: Buffer.from('bad') });
      await sql`update handles set ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)
                where id = ${bad.id}`.execute(h.database.db);
      const both = h.withKeys(
        VaultKeyring.of({ k1: h.keys['k1']!, k2: h.keys['k2']! }, 'k2'),
        LIMITS,
      );
      expect(await both.rotateKeys()).toBe(1);
      const rows = await sql<{
        id: string;
        key_id: string;
      }>`select id, key_id from handles`.execute(h.database.db);
      expect(Object.fromEntries(rows.rows.map((r) => [r.id, r.key_id]))).toEqual({
        [good.id]: 'k2',
        [bad.id]: 'k1',
      });
    });
  });

  describe('Delete, ExpireNow and the sweeper', () => {
    it('deletes for the owner only; afterwards the handle is unknown', async () => {
      const handle = await put();
      await expectRefused(
        h.service.delete({ principalId: 'agent-2', handleId: handle.id }),
        'HANDLE_NOT_OWNED',
      );
      expect(await rowCount()).toBe(1);
      await h.service.delete({ principalId: 'agent-1', handleId: handle.id });
      expect(await rowCount()).toBe(0);
      await expectRefused(
        h.service.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes: 0 }),
        'HANDLE_NOT_OWNED',
      );
      await expectRefused(
        h.service.delete({ principalId: 'agent-1', handleId: handle.id }),
        'HANDLE_NOT_OWNED',
      );
      expect(h.audit.entries.map((e) => [e.check, e.outcome, e.rule])).toEqual([
        ['vault.delete', 'deny', 'owner_mismatch'],
        ['vault.delete', 'allow', undefined],
        ['vault.peek', 'deny', 'handle_unknown'],
        ['vault.delete', 'deny', 'handle_unknown'],
      ]);
    });

    it('lets the owner delete an expired handle', async () => {
      const handle = await put({ ttlMs: 10 });
      h.clock.advance(10);
      await h.service.delete({ principalId: 'agent-1', handleId: handle.id });
      expect(await rowCount()).toBe(0);
    });

    it('expires now for an operator, keeps the metadata, and audits the reason', async () => {
      const handle = await put();
      h.clock.advance(5);
      const expired = await h.service.expireNow({
        operatorId: 'operator-1',
        handleId: handle.id,
        reason: 'leaked in a ticket',
      });
      expect(expired).toEqual({ ...handle, expiresAt: T0 + 5 });
      await expectRefused(
        h.service.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes: 0 }),
        'HANDLE_EXPIRED',
      );
      // Expiring again never moves expiry later.
      h.clock.advance(100);
      expect(
        (await h.service.expireNow({ operatorId: 'operator-1', handleId: handle.id, reason: '' }))
          .expiresAt,
      ).toBe(T0 + 5);
      expect(h.audit.entries[0]).toMatchObject({
        principalId: 'operator-1',
        check: 'vault.expire_now',
        outcome: 'allow',
        rule: 'leaked in a ticket',
        handleIds: [handle.id],
      });
    });

    it('refuses ExpireNow without an operator, or for an unknown handle, and audits both', async () => {
      const handle = await put();
      await expectRefused(
        h.service.expireNow({ operatorId: '', handleId: handle.id, reason: '' }),
        'PRINCIPAL_UNAUTHENTICATED',
      );
      await expectRefused(
        h.service.expireNow({
          operatorId: 'op',
          handleId: 'hdl_DDDDDDDDDDDDDDDDDDDDDD',
          reason: '',
        }),
        'HANDLE_NOT_OWNED',
      );
      await expectRefused(
        h.service.expireNow({ operatorId: 'op', handleId: handle.id, reason: 'a\u0000b' }),
        'INPUT_INVALID',
        'reason',
      );
      expect(h.audit.entries.map((e) => [e.reason, e.rule])).toEqual([
        ['PRINCIPAL_UNAUTHENTICATED', 'operator_missing'],
        ['HANDLE_NOT_OWNED', 'handle_unknown'],
        ['INPUT_INVALID', 'input_invalid'],
      ]);
      expect(
        (await h.service.peek({ principalId: 'agent-1', handleId: handle.id, maxBytes: 0 })).handle
          .expiresAt,
      ).toBe(handle.expiresAt);
    });

    it('purges rows expired longer than the retention, in batches, and nothing else', async () => {
      const live = await put({ ttlMs: 600_000 });
      const recent = await put({ ttlMs: 50_000, payload: Buffer.alloc(1) });
      for (let i = 0; i < 5; i++) await put({ ttlMs: 1000, payload: Buffer.alloc(1) });
      h.clock.advance(1000 + 30_000);
      // Expired 30 s ago = exactly the retention: purged. `recent` has not expired yet.
      expect(await h.service.sweepExpired(2)).toBe(5);
      // `recent` expired 21 s ago: within the retention, still HANDLE_EXPIRED rather than unknown.
      h.clock.advance(40_000);
      expect(await h.service.sweepExpired()).toBe(0);
      await expectRefused(
        h.service.peek({ principalId: 'agent-1', handleId: recent.id, maxBytes: 0 }),
        'HANDLE_EXPIRED',
      );
      h.clock.advance(10_000);
      expect(await h.service.sweepExpired()).toBe(1);
      expect(
        (await sql<{ id: string }>`select id from handles`.execute(h.database.db)).rows.map(
          (r) => r.id,
        ),
      ).toEqual([live.id]);
    });
  });
});
