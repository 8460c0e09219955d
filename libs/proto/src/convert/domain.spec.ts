import { CAPABILITIES, GRANTS } from '@hcp/policy/testing';
import { argumentsDigest, sha256Hex, type ArgumentConstraint, type Decision } from '@hcp/core';
import { constraintHolds } from '@hcp/policy';
import {
  core,
  argumentConstraintFromProto,
  argumentConstraintToProto,
  decideRequestToProto,
  capabilityFromProto,
  capabilityToProto,
  decisionFromProto,
  decisionToProto,
  grantFromProto,
  grantToProto,
  fromTimestamp,
  toTimestamp,
} from '@hcp/proto';

describe('domain <-> proto conversions', () => {
  it('round-trips every fixture grant and capability through the binary codec', () => {
    for (const g of GRANTS) {
      const bytes = core.Grant.encode(grantToProto(g)).finish();
      expect(grantFromProto(core.Grant.decode(bytes))).toEqual({ ...g, revision: g.revision ?? 0 });
    }
    for (const c of CAPABILITIES) {
      const bytes = core.Capability.encode(capabilityToProto(c)).finish();
      expect(capabilityFromProto(core.Capability.decode(bytes))).toEqual(c);
    }
  });

  it('round-trips a decision, and reads anything unreadable as a deny', () => {
    const d: Decision = {
      id: 'dec_1',
      outcome: 'deny',
      reason: 'PIPE_TARGET_DENIED',
      targetReason: 'NO_MATCHING_GRANT',
      invariant: 'I6',
      check: 'data_flow',
      explanation: 'x',
      decidedAt: 1_800_000_000_123,
      ablations: [],
      nearestGrant: { grantId: 'g', mismatch: 'm' },
    };
    expect(
      decisionFromProto(core.Decision.decode(core.Decision.encode(decisionToProto(d)).finish())),
    ).toEqual(d);
    const allow: Decision = {
      id: 'dec_2',
      outcome: 'allow',
      reason: 'ALLOWED',
      check: 'all',
      explanation: 'ok',
      decidedAt: 1,
      ablations: [],
      matchedGrantId: 'g',
    };
    expect(decisionFromProto(decisionToProto(allow))).toEqual(allow);
    // An allow outcome with a non-ALLOWED reason, or an unknown reason, is not trusted.
    expect(
      decisionFromProto({ ...decisionToProto(allow), reason: 999 as core.ReasonCode }).outcome,
    ).toBe('deny');
    expect(decisionFromProto({ ...decisionToProto(allow), outcome: 0 }).outcome).toBe('deny');
    expect(decisionFromProto({ ...decisionToProto(allow), reason: 11 }).reason).toBe(
      'NO_MATCHING_GRANT',
    );
  });

  it('round-trips every argument constraint kind through the binary codec', () => {
    const all: ArgumentConstraint[] = [
      { argument: 'mode', kind: 'one_of', values: ['append', 2.5, false, null] },
      { argument: 'branch', kind: 'pattern', pattern: 'feature/[a-z]+' },
      { argument: 'title', kind: 'max_length', maxLength: 80 },
      { argument: 'n', kind: 'range', min: -1 },
      { argument: 'm', kind: 'range', min: 0, max: 10 },
      { argument: 'force', kind: 'absent' },
    ];
    for (const c of all) {
      const bytes = core.ArgumentConstraint.encode(argumentConstraintToProto(c)).finish();
      expect(argumentConstraintFromProto(core.ArgumentConstraint.decode(bytes))).toEqual(c);
    }
  });

  it('reads an unset constraint rule as one no call satisfies (never drops it, which would widen)', () => {
    const c = argumentConstraintFromProto({ argument: 'mode', rule: undefined });
    expect(constraintHolds(c, { mode: 'anything' })).toBe(false);
    expect(constraintHolds(c, {})).toBe(false);
    const g = grantFromProto({
      ...grantToProto(GRANTS[0]!),
      argumentConstraints: [{ argument: 'mode', rule: undefined }],
    });
    expect(g.argumentConstraints).toHaveLength(1);
  });

  it('never drops a stored resource argument it cannot read (a call would skip its check)', () => {
    const wire: core.Capability = {
      ...capabilityToProto({
        id: 'fs/copy',
        provider: 'fs',
        tool: 'copy',
        effects: ['read', 'write'],
        risk: 'medium',
        approvalRequired: false,
        requiredScopes: [],
        resourceArguments: [
          { name: 'source', canonicalizer: 'path', role: 'read' },
          { name: 'destination', canonicalizer: 'path', role: 'write' },
        ],
      }),
    };
    const [source, destination] = wire.resourceArguments;
    const c = capabilityFromProto({
      ...wire,
      resourceArguments: [
        { ...source!, canonicalizer: 0, role: 99 as core.ResourceRole },
        destination!,
      ],
    });
    // An unknown canonicaliser reads as `id` (exact match only), an unknown role as `write`.
    expect(c.resourceArguments).toEqual([
      { name: 'source', canonicalizer: 'id', role: 'write' },
      { name: 'destination', canonicalizer: 'path', role: 'write' },
    ]);
    expect(capabilityFromProto(wire).resourceArguments).toEqual([
      { name: 'source', canonicalizer: 'path', role: 'read' },
      { name: 'destination', canonicalizer: 'path', role: 'write' },
    ]);
  });

  it('sends arguments as the canonical JSON the arguments digest covers', () => {
    const args = { z: 1, a: { y: [true, null], b: 'x' } };
    const wire = decideRequestToProto({
      session: { state: 'active', initialized: true },
      call: {
        capabilityId: 'fs/read_file',
        argumentsDigest: argumentsDigest(args),
        arguments: args,
      },
    });
    expect(wire.call?.argumentsJson).toBe('{"a":{"b":"x","y":[true,null]},"z":1}');
    expect(`sha256:${sha256Hex(wire.call!.argumentsJson)}`).toBe(argumentsDigest(args));
    const none = decideRequestToProto({
      session: { state: 'active', initialized: true },
      call: { capabilityId: 'fs/read_file', argumentsDigest: '' },
    });
    expect(none.call?.argumentsJson).toBe('');
  });

  it('converts timestamps at millisecond precision and treats zero as unset', () => {
    expect(fromTimestamp(toTimestamp(1_800_000_000_123))).toBe(1_800_000_000_123);
    expect(fromTimestamp({ seconds: 0, nanos: 0 })).toBeUndefined();
    expect(fromTimestamp(undefined)).toBeUndefined();
  });
});
