import { status } from '@grpc/grpc-js';
import { HcpError, type Approval, type Capability, type Grant } from '@hcp/core';
import { reasonOfGrpcError } from '@hcp/platform';
import { core, grants as pb } from '@hcp/proto';
import { ApproverRequiredError, FailedPreconditionError, NotFoundError } from './errors';
import { grpcErrorOf } from './grant-store.exception-filter';
import {
  approvalToWire,
  capabilityFromWire,
  capabilityToWire,
  createGrantInputFromWire,
  decideApprovalInputFromWire,
  durationFromWire,
  grantToWire,
  listGrantsInputFromWire,
  requestApprovalInputFromWire,
  resourcePatternFromWire,
  timestampToWire,
} from './grant-store.mapping';

/** Runs `fn`, expecting an INPUT_INVALID naming `field`; returns the message. */
function invalid(fn: () => unknown, field: string): string {
  let err: unknown;
  try {
    fn();
  } catch (e: unknown) {
    err = e;
  }
  expect(err).toBeInstanceOf(HcpError);
  expect((err as HcpError).reason).toBe('INPUT_INVALID');
  expect((err as HcpError).details['field']).toBe(field);
  return (err as HcpError).message;
}

const T = Date.UTC(2026, 10, 21, 12, 0, 0, 250);

describe('wire mapping (proto-loader objects <-> domain)', () => {
  describe('CreateGrantRequest', () => {
    it('maps every field, including each oneof case and the Timestamp', () => {
      expect(
        createGrantInputFromWire({
          principalId: 'agent-1',
          capabilities: ['fs/read_file', 'http/*'],
          resourcePatterns: [
            { pattern: 'pathPrefix', pathPrefix: '/data' },
            { pattern: 'hostSet', hostSet: { hosts: ['a.example.com'], cidrs: ['10.0.0.0/8'] } },
            { pattern: 'exactId', exactId: 'doc-1' },
          ],
          scopes: ['write'],
          expiresAt: { seconds: Math.floor(T / 1000), nanos: 250_999_999 },
          argumentConstraints: [
            {
              argument: 'mode',
              rule: 'oneOf',
              oneOf: {
                values: [
                  { value: 'stringValue', stringValue: 'append' },
                  { value: 'numberValue', numberValue: 1.5 },
                  { value: 'boolValue', boolValue: true },
                  { value: 'nullValue', nullValue: true },
                ],
              },
            },
            { argument: 'b', rule: 'pattern', pattern: 'feature/.+' },
            { argument: 't', rule: 'maxLength', maxLength: 10 },
            { argument: 'n', rule: 'range', range: { min: 1, max: null } },
            { argument: 'f', rule: 'absent', absent: {} },
          ],
        }),
      ).toEqual({
        principalId: 'agent-1',
        capabilities: ['fs/read_file', 'http/*'],
        resourcePatterns: [
          { kind: 'path_prefix', prefix: '/data' },
          { kind: 'host_set', hosts: ['a.example.com'], cidrs: ['10.0.0.0/8'] },
          { kind: 'exact_id', id: 'doc-1' },
        ],
        scopes: ['write'],
        expiresAt: T,
        argumentConstraints: [
          { argument: 'mode', kind: 'one_of', values: ['append', 1.5, true, null] },
          { argument: 'b', kind: 'pattern', pattern: 'feature/.+' },
          { argument: 't', kind: 'max_length', maxLength: 10 },
          { argument: 'n', kind: 'range', min: 1 },
          { argument: 'f', kind: 'absent' },
        ],
      });
    });

    it('reads unset fields as proto3 defaults and an unset expiry as never', () => {
      expect(createGrantInputFromWire({ expiresAt: null })).toEqual({
        principalId: '',
        capabilities: [],
        resourcePatterns: [],
        scopes: [],
        argumentConstraints: [],
      });
    });

    it('accepts a oneof without the virtual field when exactly one member is present', () => {
      expect(resourcePatternFromWire({ exactId: 'x' }, 'p')).toEqual({ kind: 'exact_id', id: 'x' });
    });

    it('rejects malformed argument constraints naming the field', () => {
      const constraint = (c: unknown) =>
        createGrantInputFromWire({ argumentConstraints: [c] }).argumentConstraints;
      invalid(() => constraint({ argument: 'm' }), 'argumentConstraints[0]');
      invalid(() => constraint({ argument: 'm', rule: 'glob' }), 'argumentConstraints[0]');
      invalid(
        () => constraint({ argument: 'm', rule: 'oneOf', oneOf: { values: [{}] } }),
        'argumentConstraints[0].oneOf.values[0]',
      );
      invalid(
        () => constraint({ argument: 'n', rule: 'range', range: { min: '1' } }),
        'argumentConstraints[0].range.min',
      );
    });

    it('accepts a constraint rule without the virtual field when exactly one member is present', () => {
      expect(
        createGrantInputFromWire({ argumentConstraints: [{ argument: 'x', absent: {} }] })
          .argumentConstraints,
      ).toEqual([{ argument: 'x', kind: 'absent' }]);
    });

    it('rejects malformed shapes naming the field', () => {
      invalid(() => createGrantInputFromWire(null), 'request');
      invalid(() => createGrantInputFromWire({ principalId: 7 }), 'principalId');
      invalid(() => createGrantInputFromWire({ capabilities: 'fs/read_file' }), 'capabilities');
      invalid(() => createGrantInputFromWire({ capabilities: [1] }), 'capabilities[0]');
      invalid(
        () => createGrantInputFromWire({ capabilities: Array.from({ length: 65 }, () => 'a/b') }),
        'capabilities',
      );
      expect(
        invalid(() => createGrantInputFromWire({ resourcePatterns: [{}] }), 'resourcePatterns[0]'),
      ).toMatch(/exactly one of pathPrefix, hostSet, exactId/);
      invalid(
        () => createGrantInputFromWire({ resourcePatterns: [{ pathPrefix: '/a', exactId: 'b' }] }),
        'resourcePatterns[0]',
      );
      invalid(
        () =>
          createGrantInputFromWire({
            resourcePatterns: [{ pattern: 'hostSet', hostSet: { hosts: [3] } }],
          }),
        'resourcePatterns[0].hostSet.hosts[0]',
      );
      invalid(() => createGrantInputFromWire({ resourcePatterns: [null] }), 'resourcePatterns[0]');
      invalid(
        () => createGrantInputFromWire({ expiresAt: { seconds: 1, nanos: 1e9 } }),
        'expiresAt.nanos',
      );
      invalid(
        () => createGrantInputFromWire({ expiresAt: { seconds: 1, nanos: -1 } }),
        'expiresAt.nanos',
      );
      invalid(
        () => createGrantInputFromWire({ expiresAt: { seconds: 3e11, nanos: 0 } }),
        'expiresAt.seconds',
      );
      invalid(
        () => createGrantInputFromWire({ expiresAt: { seconds: 1.5, nanos: 0 } }),
        'expiresAt.seconds',
      );
      invalid(() => createGrantInputFromWire({ expiresAt: 'tomorrow' }), 'expiresAt');
    });
  });

  describe('enums: UNSPECIFIED and unknown numbers are refused by field', () => {
    const cap = {
      id: 'fs/read_file',
      provider: 'fs',
      tool: 'read_file',
      effects: [core.Effect.EFFECT_READ],
      risk: core.RiskClass.RISK_CLASS_LOW,
      approvalRequired: false,
      requiredScopes: [],
      resourceArgument: { name: 'path', canonicalizer: core.ResourceKind.RESOURCE_KIND_PATH },
      definitionDigest: '',
    };

    it('maps a capability with every enum', () => {
      expect(capabilityFromWire(cap, 'capability')).toEqual({
        id: 'fs/read_file',
        provider: 'fs',
        tool: 'read_file',
        effects: ['read'],
        risk: 'low',
        approvalRequired: false,
        requiredScopes: [],
        resourceArgument: { name: 'path', canonicalizer: 'path' },
      });
    });

    it.each([
      [{ risk: 0 }, 'capability.risk', /RISK_CLASS_UNSPECIFIED/],
      [{ risk: 42 }, 'capability.risk', /unknown value 42/],
      [{ effects: [1, 0] }, 'capability.effects[1]', /EFFECT_UNSPECIFIED/],
      [{ effects: [9] }, 'capability.effects[0]', /unknown value 9/],
      [
        { resourceArgument: { name: 'path', canonicalizer: 0 } },
        'capability.resourceArgument.canonicalizer',
        /RESOURCE_KIND_UNSPECIFIED/,
      ],
    ])('%j -> %s', (patch, field, message) => {
      expect(invalid(() => capabilityFromWire({ ...cap, ...patch }, 'capability'), field)).toMatch(
        message,
      );
    });

    it('requires the capability message', () => {
      invalid(() => capabilityFromWire(undefined, 'capability'), 'capability');
      invalid(() => capabilityFromWire(null, 'capability'), 'capability');
    });

    it('maps the approval verdict and refuses APPROVAL_VERDICT_UNSPECIFIED', () => {
      expect(
        decideApprovalInputFromWire({
          approvalId: 'apr_1',
          verdict: pb.ApprovalVerdict.APPROVAL_VERDICT_DENY,
        }),
      ).toEqual({ approvalId: 'apr_1', verdict: 'deny' });
      expect(
        invalid(() => decideApprovalInputFromWire({ approvalId: 'apr_1', verdict: 0 }), 'verdict'),
      ).toMatch(/APPROVAL_VERDICT_UNSPECIFIED/);
      invalid(() => decideApprovalInputFromWire({ approvalId: 'apr_1', verdict: -1 }), 'verdict');
    });
  });

  describe('ListGrants and RequestApproval', () => {
    it('maps list requests; page size must be an integer', () => {
      expect(
        listGrantsInputFromWire({
          principalId: 'a',
          includeInactive: true,
          pageSize: 7,
          pageToken: 't',
        }),
      ).toEqual({
        principalId: 'a',
        includeInactive: true,
        pageSize: 7,
        pageToken: 't',
      });
      invalid(() => listGrantsInputFromWire({ pageSize: 1.5 }), 'pageSize');
      invalid(() => listGrantsInputFromWire({ includeInactive: 'yes' }), 'includeInactive');
    });

    it('maps the TTL Duration to millis and refuses malformed ones', () => {
      expect(
        requestApprovalInputFromWire({ ttl: { seconds: 90, nanos: 500_000_000 } }),
      ).toMatchObject({
        ttlMs: 90_500,
      });
      expect(requestApprovalInputFromWire({})).not.toHaveProperty('ttlMs');
      expect(durationFromWire({ d: { seconds: -1, nanos: -500_000_000 } }, 'd')).toBe(-1500);
      invalid(() => requestApprovalInputFromWire({ ttl: { seconds: 1, nanos: -1 } }), 'ttl.nanos');
      invalid(
        () => requestApprovalInputFromWire({ ttl: { seconds: 1e12, nanos: 0 } }),
        'ttl.seconds',
      );
    });
  });

  describe('domain -> wire', () => {
    it('writes a grant with Timestamps, the oneof members and the revision', () => {
      const grant: Grant = {
        id: 'grt_1',
        principalId: 'a',
        capabilities: ['fs/*'],
        resourcePatterns: [
          { kind: 'path_prefix', prefix: '/d' },
          { kind: 'host_set', hosts: ['h.example.com'], cidrs: [] },
          { kind: 'exact_id', id: 'x' },
        ],
        scopes: [],
        createdAt: T,
        revokedAt: T + 1,
        revision: 4,
        argumentConstraints: [
          { argument: 'mode', kind: 'one_of', values: ['a', 2, false, null] },
          { argument: 'n', kind: 'range', max: 5 },
          { argument: 'f', kind: 'absent' },
        ],
      };
      expect(grantToWire(grant)).toEqual({
        id: 'grt_1',
        principalId: 'a',
        capabilities: ['fs/*'],
        resourcePatterns: [
          { pattern: 'pathPrefix', pathPrefix: '/d' },
          { pattern: 'hostSet', hostSet: { hosts: ['h.example.com'], cidrs: [] } },
          { pattern: 'exactId', exactId: 'x' },
        ],
        scopes: [],
        createdAt: { seconds: Math.floor(T / 1000), nanos: 250_000_000 },
        revokedAt: { seconds: Math.floor(T / 1000), nanos: 251_000_000 },
        revision: 4,
        argumentConstraints: [
          {
            argument: 'mode',
            rule: 'oneOf',
            oneOf: {
              values: [
                { value: 'stringValue', stringValue: 'a' },
                { value: 'numberValue', numberValue: 2 },
                { value: 'boolValue', boolValue: false },
                { value: 'nullValue', nullValue: true },
              ],
            },
          },
          { argument: 'n', rule: 'range', range: { max: 5 } },
          { argument: 'f', rule: 'absent', absent: {} },
        ],
      });
    });

    it('round-trips a capability and writes approval states as proto numbers', () => {
      const c: Capability = {
        id: 'shell/exec',
        provider: 'shell',
        tool: 'exec',
        effects: ['execute', 'network'],
        risk: 'high',
        approvalRequired: true,
        requiredScopes: ['x'],
        definitionDigest: 'a'.repeat(64),
      };
      expect(capabilityFromWire(capabilityToWire(c), 'c')).toEqual(c);
      const a: Approval = {
        id: 'apr_1',
        principalId: 'a',
        capabilityId: 'shell/exec',
        bindingDigest: 'sha256:' + '0'.repeat(64),
        state: 'approved',
        expiresAt: T,
        decidedBy: 'op',
      };
      expect(approvalToWire(a)).toEqual({
        id: 'apr_1',
        principalId: 'a',
        capabilityId: 'shell/exec',
        bindingDigest: a.bindingDigest,
        state: core.ApprovalState.APPROVAL_STATE_APPROVED,
        expiresAt: { seconds: Math.floor(T / 1000), nanos: 250_000_000 },
        decidedBy: 'op',
      });
    });

    it('writes pre-epoch millis with non-negative nanos', () => {
      expect(timestampToWire(-1)).toEqual({ seconds: -1, nanos: 999_000_000 });
    });
  });

  describe('errors -> gRPC status', () => {
    it('maps NotFoundError to NOT_FOUND (CAPABILITY_UNKNOWN for capabilities)', () => {
      const grant = grpcErrorOf(new NotFoundError('grant', 'grt_1'));
      expect(grant.code).toBe(status.NOT_FOUND);
      expect(reasonOfGrpcError(grant)).toBeUndefined();
      const cap = grpcErrorOf(new NotFoundError('capability', 'fs/x'));
      expect(cap.code).toBe(status.NOT_FOUND);
      expect(reasonOfGrpcError(cap)?.reason).toBe('CAPABILITY_UNKNOWN');
    });

    it('maps unusable approvals to FAILED_PRECONDITION with the reason, as the proto says', () => {
      for (const reason of [
        'APPROVAL_REQUIRED',
        'APPROVAL_MISMATCH',
        'APPROVAL_CONSUMED',
        'APPROVAL_EXPIRED',
      ] as const) {
        const e = grpcErrorOf(new FailedPreconditionError('x', reason));
        expect(e.code).toBe(status.FAILED_PRECONDITION);
        expect(reasonOfGrpcError(e)?.reason).toBe(reason);
      }
    });

    it('maps INPUT_INVALID to INVALID_ARGUMENT through the platform table', () => {
      const e = grpcErrorOf(new HcpError('INPUT_INVALID', 'principalId: is required'));
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(reasonOfGrpcError(e)).toEqual({
        reason: 'INPUT_INVALID',
        detail: 'principalId: is required',
      });
    });

    it('maps a non-operator token to PERMISSION_DENIED with PRINCIPAL_UNAUTHENTICATED', () => {
      const e = grpcErrorOf(new ApproverRequiredError('agent', 'DecideApproval'));
      expect(e.code).toBe(status.PERMISSION_DENIED);
      expect(reasonOfGrpcError(e)?.reason).toBe('PRINCIPAL_UNAUTHENTICATED');
      expect(e.details).toMatch(/DecideApproval needs an operator token.*agent/);
    });
  });
});
