import { PolicyEngine } from '@hcp/policy';
import { RecordingAudit } from '@hcp/platform/testing';
import {
  ALICE,
  CAPABILITIES,
  FIXTURES,
  FIXTURE_VERSIONS,
  GRANTS,
  NOW,
  activeSession,
  call,
  path,
} from '@hcp/policy/testing';
import { DecisionService } from './decision.service';
import { PolicyCache } from './policy-cache';
import { MemoryGrantSource } from './testing/memory-grant-source';
import { decideInputOf, pipeInputOf } from './testing/fixture-inputs';

function service(source = new MemoryGrantSource(GRANTS, CAPABILITIES)) {
  const clock = () => NOW;
  const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
  const cache = new PolicyCache(source, { maxStalenessMs: 1000, clock });
  return { source, decisions: new DecisionService(engine, cache, source, clock) };
}

describe('DecisionService on the decision fixtures', () => {
  // Peek fixtures are decided by the vault, not the PDP; every other fixture runs here.
  const cases = FIXTURES.filter((f) => f.op !== 'peek');

  it.each(cases.map((f) => [f.name, f] as const))('%s', async (_n, f) => {
    const { source, decisions } = service();
    const d =
      f.op === 'decide'
        ? await decisions.decide(decideInputOf(f.request, source))
        : f.op === 'pipe'
          ? await decisions.decidePipe(pipeInputOf(f.request, source))
          : undefined;
    expect({ outcome: d?.outcome, reason: d?.reason }).toEqual({
      outcome: f.expect.outcome,
      reason: f.expect.reason,
    });
  });
});

describe('DecisionService failing closed', () => {
  const read = {
    principal: ALICE,
    session: activeSession('alice'),
    now: NOW,
    call: { ...call('fs/read_file', path('/data/app/a.txt'), { path: '/data/app/a.txt' }) },
  };

  it('denies POLICY_UNAVAILABLE when grant-store is unreachable, and allows again when it returns', async () => {
    const { source, decisions } = service();
    source.failing = true;
    const d = await decisions.decide(decideInputOf(read));
    expect([d.outcome, d.reason, d.check]).toEqual(['deny', 'POLICY_UNAVAILABLE', 'policy_source']);
    source.failing = false;
    expect((await decisions.decide(decideInputOf(read))).reason).toBe('ALLOWED');
  });

  it('keeps the exact reason of checks that need no grants while policy is unavailable', async () => {
    const { source, decisions } = service();
    source.failing = true;
    const foreign = await decisions.decide(
      decideInputOf({ ...read, session: activeSession('bob'), now: NOW }),
    );
    expect(foreign.reason).toBe('SESSION_FOREIGN');
    const noSession = await decisions.decide(
      decideInputOf({ ...read, session: { state: 'none', initialized: false }, now: NOW }),
    );
    expect(noSession.reason).toBe('SESSION_NOT_INITIALIZED');
  });

  it('denies POLICY_UNAVAILABLE when the approval cannot be fetched', async () => {
    const { source, decisions } = service();
    const f = FIXTURES.find((x) => x.name === 'i2.allow.write_with_bound_approval')!;
    if (f.op !== 'decide') throw new Error('fixture kind');
    const input = decideInputOf(f.request, source);
    expect((await decisions.decide(input)).reason).toBe('ALLOWED');
    await decisions.decide(input); // warm the grant cache
    source.failing = true;
    expect((await decisions.decide(input)).reason).toBe('POLICY_UNAVAILABLE');
  });

  it('treats an unknown approval id as no approval', async () => {
    const { decisions } = service();
    const f = FIXTURES.find((x) => x.name === 'i2.allow.write_with_bound_approval')!;
    if (f.op !== 'decide') throw new Error('fixture kind');
    const input = decideInputOf(f.request); // approval not registered in the source
    expect((await decisions.decide(input)).reason).toBe('APPROVAL_REQUIRED');
  });

  it('explains with the full trace, and with an empty trace when policy is unavailable', async () => {
    const { source, decisions } = service();
    const ok = await decisions.explain(decideInputOf(read));
    expect(ok.trace).toHaveLength(8);
    source.failing = true;
    const { decision, trace } = await service(source).decisions.explain(decideInputOf(read));
    expect([decision.reason, trace.length]).toEqual(['POLICY_UNAVAILABLE', 0]);
  });
});

describe('DecisionService recording every decision (I7)', () => {
  const setup = () => {
    const source = new MemoryGrantSource(GRANTS, CAPABILITIES);
    const audit = new RecordingAudit();
    const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
    const cache = new PolicyCache(source, { maxStalenessMs: 1000, clock: () => NOW });
    return {
      audit,
      source,
      decisions: new DecisionService(engine, cache, source, () => NOW, audit),
    };
  };
  const allowed = FIXTURES.find((f) => f.name === 'i5.allow.prefix_on_boundary')!;
  const denied = FIXTURES.find((f) => f.name === 'i5.deny.sibling_prefix')!;
  const pipe = FIXTURES.find((f) => f.name === 'i6.deny.pipe_to_ungranted_target')!;

  it('records one entry per decision, allow and deny, and none for explain', async () => {
    const { audit, source, decisions } = setup();
    if (allowed.op !== 'decide' || denied.op !== 'decide' || pipe.op !== 'pipe')
      throw new Error('fixture kind');
    const a = await decisions.decide(decideInputOf(allowed.request, source));
    const d = await decisions.decide(decideInputOf(denied.request, source));
    const p = await decisions.decidePipe(pipeInputOf(pipe.request, source));
    await decisions.explain(decideInputOf(allowed.request, source));
    expect(audit.entries.map((e) => [e.decisionId, e.outcome, e.reason, e.endpointFamily])).toEqual(
      [
        [a.id, 'allow', 'ALLOWED', 'tools/call'],
        [d.id, 'deny', 'NO_MATCHING_GRANT', 'tools/call'],
        [p.id, 'deny', 'PIPE_TARGET_DENIED', 'handle/pipe'],
      ],
    );
    expect(audit.entries[2]?.handleIds).toEqual([pipe.request.sourceHandleId]);
  });

  it('denies AUDIT_UNAVAILABLE while its own audit buffer is full', async () => {
    const { audit, source, decisions } = setup();
    if (allowed.op !== 'decide') throw new Error('fixture kind');
    audit.full = true;
    const d = await decisions.decide(decideInputOf(allowed.request, source));
    expect([d.outcome, d.reason]).toEqual(['deny', 'AUDIT_UNAVAILABLE']);
    audit.full = false;
    expect((await decisions.decide(decideInputOf(allowed.request, source))).outcome).toBe('allow');
  });

  it('turns an allow into a deny when its entry is refused at the last moment', async () => {
    const { audit, source, decisions } = setup();
    if (allowed.op !== 'decide') throw new Error('fixture kind');
    audit.refuseNext = true;
    const d = await decisions.decide(decideInputOf(allowed.request, source));
    expect([d.outcome, d.reason]).toEqual(['deny', 'AUDIT_UNAVAILABLE']);
  });
});
