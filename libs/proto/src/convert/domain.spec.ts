import { CAPABILITIES, GRANTS } from '@hcp/policy/testing';
import type { Decision } from '@hcp/core';
import {
  core,
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

  it('converts timestamps at millisecond precision and treats zero as unset', () => {
    expect(fromTimestamp(toTimestamp(1_800_000_000_123))).toBe(1_800_000_000_123);
    expect(fromTimestamp({ seconds: 0, nanos: 0 })).toBeUndefined();
    expect(fromTimestamp(undefined)).toBeUndefined();
  });
});
