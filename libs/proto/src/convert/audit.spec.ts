import type { AuditEntry } from '@hcp/core';
import { auditEntryFromProto, auditEntryToProto, core } from '@hcp/proto';

const roundTrip = (e: AuditEntry) =>
  auditEntryFromProto(
    core.AuditEntry.decode(core.AuditEntry.encode(auditEntryToProto(e)).finish()),
  );

describe('audit entry <-> proto', () => {
  it('round-trips a full and a minimal entry through the binary codec', () => {
    const full: AuditEntry = {
      id: 'aud_1',
      time: 1_800_000_000_123,
      decisionId: 'dec_1',
      principalId: 'agent-1',
      endpointFamily: 'handle/pipe',
      capabilityId: 'fs/write',
      resourceRaw: './x/../y',
      resourceCanonical: '/srv/y',
      outcome: 'deny',
      reason: 'PIPE_TARGET_DENIED',
      invariant: 'I6',
      check: 'data_flow',
      matchedGrantId: 'grt_1',
      missingGrant: 'fs/write on /srv/y',
      rule: 'path.outside_roots',
      approvalId: 'apr_1',
      handleIds: ['hdl_a', 'hdl_b'],
      traceId: '0af7651916cd43dd8448eb211c80319c',
      seq: 7,
      prevHash: 'a'.repeat(64),
      hash: 'b'.repeat(64),
    };
    expect(roundTrip(full)).toEqual(full);
    const minimal: AuditEntry = {
      id: 'aud_2',
      time: 1,
      decisionId: '',
      endpointFamily: 'protocol',
      outcome: 'deny',
      reason: 'SESSION_NOT_INITIALIZED',
      handleIds: [],
    };
    expect(roundTrip(minimal)).toEqual(minimal);
  });

  it('refuses an entry without id, time, family, outcome or reason, naming the field', () => {
    const good = auditEntryToProto({
      id: 'aud_3',
      time: 5,
      decisionId: '',
      endpointFamily: 'grant',
      outcome: 'allow',
      reason: 'ALLOWED',
      handleIds: [],
    });
    const cases: [Partial<core.AuditEntry>, string][] = [
      [{ id: '' }, 'entry.id'],
      [{ time: undefined }, 'entry.time'],
      [{ endpointFamily: 0 }, 'entry.endpoint_family'],
      [{ outcome: 99 as core.Outcome }, 'entry.outcome'],
      [{ reason: 0 }, 'entry.reason'],
      [{ invariant: 42 as core.Invariant }, 'entry.invariant'],
    ];
    for (const [patch, field] of cases) {
      expect(() => auditEntryFromProto({ ...good, ...patch })).toThrow(field);
    }
  });
});
