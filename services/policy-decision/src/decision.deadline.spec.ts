import { HcpError } from '@hcp/core';
import { PolicyEngine } from '@hcp/policy';
import { RecordingAudit } from '@hcp/platform/testing';
import { CAPABILITIES, FIXTURES, FIXTURE_VERSIONS, GRANTS, NOW } from '@hcp/policy/testing';
import { DEADLINE_MARGIN_MS, DecisionService, deadlineOf } from './decision.service';
import { PolicyCache } from './policy-cache';
import { MemoryGrantSource } from './testing/memory-grant-source';
import { decideInputOf, pipeInputOf } from './testing/fixture-inputs';

function setup() {
  let t = NOW;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const source = new MemoryGrantSource(GRANTS, CAPABILITIES);
  const audit = new RecordingAudit();
  const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
  const cache = new PolicyCache(source, { maxStalenessMs: 60_000, clock: clock.now });
  const decisions = new DecisionService(engine, cache, source, clock.now, audit);
  return { clock, source, audit, decisions };
}

const allowed = FIXTURES.find((f) => f.name === 'i5.allow.prefix_on_boundary')!;
const pipeAllowed = FIXTURES.find((f) => f.op === 'pipe' && f.expect.outcome === 'allow')!;

describe('DecisionService and the caller deadline (no late decisions)', () => {
  if (allowed.op !== 'decide' || pipeAllowed.op !== 'pipe') throw new Error('fixture kind');

  it('allows within the deadline, and records that allow', async () => {
    const { source, audit, decisions } = setup();
    const d = await decisions.decide(decideInputOf(allowed.request, source), { budgetMs: 2000 });
    expect(d.outcome).toBe('allow');
    expect(audit.entries.map((e) => [e.decisionId, e.outcome])).toEqual([[d.id, 'allow']]);
  });

  it('refuses to decide once the deadline has passed, and records POLICY_UNAVAILABLE', async () => {
    const { source, audit, decisions } = setup();
    const d = await decisions.decide(decideInputOf(allowed.request, source), { budgetMs: 0 });
    expect(d).toMatchObject({ outcome: 'deny', reason: 'POLICY_UNAVAILABLE', check: 'deadline' });
    // Nothing was fetched: the grants were never asked for.
    expect(source.calls.principal).toBe(0);
    expect(audit.entries).toEqual([
      expect.objectContaining({
        decisionId: d.id,
        outcome: 'deny',
        reason: 'POLICY_UNAVAILABLE',
        check: 'deadline',
        capabilityId: allowed.request.call.capabilityId,
      }),
    ]);
  });

  it('records a deny, never the allow, when the deadline passes while deciding', async () => {
    const { clock, source, audit, decisions } = setup();
    let release = (): void => undefined;
    source.gate = new Promise<void>((r) => (release = r));
    const pending = decisions.decide(decideInputOf(allowed.request, source), { budgetMs: 100 });
    // The grant fetch stalls (a paused grant-store) past the caller's deadline.
    clock.advance(100);
    release();
    const d = await pending;
    expect(d).toMatchObject({ outcome: 'deny', reason: 'POLICY_UNAVAILABLE', check: 'deadline' });
    expect(audit.entries.map((e) => e.outcome)).toEqual(['deny']);
  });

  it('treats a decision within the margin of the deadline as late (the answer must travel back)', async () => {
    const { source, decisions } = setup();
    const input = decideInputOf(allowed.request, source);
    expect((await decisions.decide(input, { budgetMs: DEADLINE_MARGIN_MS })).check).toBe(
      'deadline',
    );
    expect((await decisions.decide(input, { budgetMs: DEADLINE_MARGIN_MS + 1 })).outcome).toBe(
      'allow',
    );
  });

  it('applies the deadline to pipes too', async () => {
    const { source, audit, decisions } = setup();
    const ok = await decisions.decidePipe(pipeInputOf(pipeAllowed.request, source), {
      budgetMs: 2000,
    });
    expect(ok.outcome).toBe('allow');
    const late = await decisions.decidePipe(pipeInputOf(pipeAllowed.request, source), {
      budgetMs: 0,
    });
    expect(late).toMatchObject({ outcome: 'deny', check: 'deadline' });
    expect(audit.entries.at(-1)).toMatchObject({
      decisionId: late.id,
      endpointFamily: 'handle/pipe',
      handleIds: [pipeAllowed.request.sourceHandleId],
    });
  });

  it('decides without a bound when the caller set no deadline', async () => {
    const { source, decisions } = setup();
    expect((await decisions.decide(decideInputOf(allowed.request, source))).outcome).toBe('allow');
  });
});

describe('DecisionService refusals through the one refusal path', () => {
  if (allowed.op !== 'decide') throw new Error('fixture kind');

  it('records its POLICY_UNAVAILABLE deny when grant-store is away, and allows when it is back', async () => {
    const { source, audit, decisions } = setup();
    source.failing = true;
    const d = await decisions.decide(decideInputOf(allowed.request, source));
    expect(d).toMatchObject({ outcome: 'deny', reason: 'POLICY_UNAVAILABLE', ablations: [] });
    expect(audit.entries.at(-1)).toMatchObject({ decisionId: d.id, check: 'policy_source' });
    source.failing = false;
    expect((await decisions.decide(decideInputOf(allowed.request, source))).outcome).toBe('allow');
  });

  it('makes its AUDIT_UNAVAILABLE deny through the factory (invariant from the one table)', async () => {
    const { source, audit, decisions } = setup();
    // Full only once the engine has decided: available() said yes, record() then refuses.
    let calls = 0;
    audit.available = () => true;
    const record = audit.record.bind(audit);
    audit.record = (e) => {
      if (calls++ === 0) throw new HcpError('AUDIT_UNAVAILABLE', 'audit buffer full');
      record(e);
    };
    const d = await decisions.decide(decideInputOf(allowed.request, source));
    expect(d).toMatchObject({ outcome: 'deny', reason: 'AUDIT_UNAVAILABLE', invariant: 'I7' });
    // The refusal path tried again, and this time the audit took the deny.
    expect(audit.entries).toEqual([expect.objectContaining({ decisionId: d.id, outcome: 'deny' })]);
  });
});

describe('deadlineOf', () => {
  it('reads the grpc-js deadline as the budget left at receipt', () => {
    expect(deadlineOf({ getDeadline: () => new Date(1500) }, 1000)).toEqual({ budgetMs: 500 });
    expect(deadlineOf({ getDeadline: () => Infinity }, 1000)).toEqual({});
    expect(deadlineOf(undefined)).toEqual({});
  });
});
