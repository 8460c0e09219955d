import { HcpError, type Approval, type Capability, type Grant } from '@hcp/core';
import * as core from '../generated/hcp/core/v1/core';
import * as pb from '../generated/hcp/grants/v1/grant_store';
import { durationFromProto } from './check';
import { capabilityFromProto, capabilityToProto, grantFromProto, grantToProto } from './domain';
import { toTimestamp } from './enums';
import {
  approvalToProto,
  capabilityFromRequest,
  createGrantRequestFromProto,
  decideApprovalRequestFromProto,
  requestApprovalRequestFromProto,
  resourcePatternFromRequest,
} from './grants';

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

/** A stored grant with a URL pattern that names schemes and ports, and one that names neither. */
const grantWithHostSet: Grant = {
  id: 'grt_h',
  principalId: 'a',
  capabilities: ['http/fetch'],
  resourcePatterns: [
    { kind: 'host_set', hosts: ['a.example.com'], cidrs: [], schemes: ['https'], ports: [8443] },
    { kind: 'host_set', hosts: ['b.example.com'], cidrs: [] },
  ],
  scopes: [],
  createdAt: T,
  revision: 1,
};

/** A CreateGrantRequest as a client sends it: unset fields at their proto defaults. */
const createGrant = (o: Partial<pb.CreateGrantRequest>) =>
  createGrantRequestFromProto(pb.CreateGrantRequest.fromPartial(o));

describe('grant-store request converters (ts-proto message -> domain, checked)', () => {
  describe('CreateGrantRequest', () => {
    it('maps every field, including each oneof case and the Timestamp', () => {
      expect(
        createGrant({
          principalId: 'agent-1',
          capabilities: ['fs/read_file', 'http/*'],
          resourcePatterns: [
            { pattern: { $case: 'pathPrefix', value: '/data' } },
            {
              pattern: {
                $case: 'hostSet',
                value: {
                  hosts: ['a.example.com'],
                  cidrs: ['10.0.0.0/8'],
                  schemes: ['https', 'wss'],
                  ports: [443, 8443],
                },
              },
            },
            { pattern: { $case: 'exactId', value: 'doc-1' } },
          ],
          scopes: ['write'],
          expiresAt: { seconds: Math.floor(T / 1000), nanos: 250_999_999 },
          argumentConstraints: [
            {
              argument: 'mode',
              rule: {
                $case: 'oneOf',
                value: {
                  values: [
                    { value: { $case: 'stringValue', value: 'append' } },
                    { value: { $case: 'numberValue', value: 1.5 } },
                    { value: { $case: 'boolValue', value: true } },
                    { value: { $case: 'nullValue', value: true } },
                  ],
                },
              },
            },
            { argument: 'b', rule: { $case: 'pattern', value: 'feature/.+' } },
            { argument: 't', rule: { $case: 'maxLength', value: 10 } },
            { argument: 'n', rule: { $case: 'range', value: { min: 1 } } },
            { argument: 'f', rule: { $case: 'absent', value: {} } },
          ],
        }),
      ).toEqual({
        principalId: 'agent-1',
        capabilities: ['fs/read_file', 'http/*'],
        resourcePatterns: [
          { kind: 'path_prefix', prefix: '/data' },
          {
            kind: 'host_set',
            hosts: ['a.example.com'],
            cidrs: ['10.0.0.0/8'],
            schemes: ['https', 'wss'],
            ports: [443, 8443],
          },
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

    it('bounds the schemes and ports of a host set, each checked by field', () => {
      const hostSet = (o: Partial<core.HostSet>) =>
        resourcePatternFromRequest(
          {
            pattern: {
              $case: 'hostSet',
              value: { hosts: ['h.example.com'], cidrs: [], schemes: [], ports: [], ...o },
            },
          },
          'p',
        );
      // Unset schemes and ports stay absent: the defaults (http/https, default port) apply.
      expect(hostSet({})).toEqual({ kind: 'host_set', hosts: ['h.example.com'], cidrs: [] });
      expect(hostSet({ schemes: ['git+ssh', 'http'], ports: [1, 65_535] })).toMatchObject({
        schemes: ['git+ssh', 'http'],
        ports: [1, 65_535],
      });
      invalid(() => hostSet({ schemes: ['HTTPS'] }), 'p.hostSet.schemes[0]');
      invalid(() => hostSet({ schemes: ['https:'] }), 'p.hostSet.schemes[0]');
      invalid(() => hostSet({ schemes: ['http', ''] }), 'p.hostSet.schemes[1]');
      invalid(
        () => hostSet({ schemes: Array.from({ length: 9 }, () => 'http') }),
        'p.hostSet.schemes',
      );
      invalid(() => hostSet({ ports: [0] }), 'p.hostSet.ports[0]');
      invalid(() => hostSet({ ports: [443, 65_536] }), 'p.hostSet.ports[1]');
      invalid(() => hostSet({ ports: Array.from({ length: 65 }, () => 443) }), 'p.hostSet.ports');
    });

    it('reads unset fields as proto3 defaults and an unset expiry as never', () => {
      expect(createGrant({})).toEqual({
        principalId: '',
        capabilities: [],
        resourcePatterns: [],
        scopes: [],
        argumentConstraints: [],
      });
    });

    it('rejects malformed argument constraints naming the field', () => {
      const constraint = (c: core.ArgumentConstraint) =>
        createGrant({ argumentConstraints: [c] }).argumentConstraints;
      invalid(() => constraint({ argument: 'm', rule: undefined }), 'argumentConstraints[0]');
      invalid(
        () =>
          constraint({
            argument: 'm',
            rule: { $case: 'oneOf', value: { values: [{ value: undefined }] } },
          }),
        'argumentConstraints[0].oneOf.values[0]',
      );
      invalid(
        () =>
          constraint({
            argument: 'm',
            rule: {
              $case: 'oneOf',
              value: { values: [{ value: { $case: 'nullValue', value: false } }] },
            },
          }),
        'argumentConstraints[0].oneOf.values[0].nullValue',
      );
    });

    it('rejects malformed shapes naming the field', () => {
      invalid(
        () => createGrant({ capabilities: Array.from({ length: 65 }, () => 'a/b') }),
        'capabilities',
      );
      invalid(() => createGrant({ scopes: Array.from({ length: 33 }, () => 's') }), 'scopes');
      invalid(
        () => createGrant({ resourcePatterns: Array.from({ length: 65 }, () => ({})) }),
        'resourcePatterns',
      );
      expect(invalid(() => createGrant({ resourcePatterns: [{}] }), 'resourcePatterns[0]')).toMatch(
        /exactly one of pathPrefix, hostSet, exactId/,
      );
      invalid(
        () =>
          resourcePatternFromRequest(
            {
              pattern: {
                $case: 'hostSet',
                value: {
                  hosts: Array.from({ length: 65 }, () => 'h'),
                  cidrs: [],
                  schemes: [],
                  ports: [],
                },
              },
            },
            'p',
          ),
        'p.hostSet.hosts',
      );
      invalid(() => createGrant({ expiresAt: { seconds: 1, nanos: 1e9 } }), 'expiresAt.nanos');
      invalid(() => createGrant({ expiresAt: { seconds: 1, nanos: -1 } }), 'expiresAt.nanos');
      invalid(() => createGrant({ expiresAt: { seconds: 3e11, nanos: 0 } }), 'expiresAt.seconds');
    });
  });

  describe('enums: UNSPECIFIED and unknown numbers are refused by field', () => {
    const cap: core.Capability = {
      id: 'fs/read_file',
      provider: 'fs',
      tool: 'read_file',
      effects: [core.Effect.EFFECT_READ],
      risk: core.RiskClass.RISK_CLASS_LOW,
      approvalRequired: false,
      requiredScopes: [],
      resourceArguments: [
        {
          name: 'path',
          canonicalizer: core.ResourceKind.RESOURCE_KIND_PATH,
          role: core.ResourceRole.RESOURCE_ROLE_READ,
          scopes: [],
          many: false,
        },
      ],
      definitionDigest: '',
    };
    const arg = cap.resourceArguments[0]!;

    it('maps a capability with every enum', () => {
      expect(capabilityFromRequest(cap, 'capability')).toEqual({
        id: 'fs/read_file',
        provider: 'fs',
        tool: 'read_file',
        effects: ['read'],
        risk: 'low',
        approvalRequired: false,
        requiredScopes: [],
        resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
      });
    });

    it('maps several resource arguments in order, with scopes and many', () => {
      const move = capabilityFromRequest(
        {
          ...cap,
          resourceArguments: [
            { ...arg, name: 'source', role: core.ResourceRole.RESOURCE_ROLE_DELETE },
            {
              ...arg,
              name: 'destinations',
              role: core.ResourceRole.RESOURCE_ROLE_WRITE,
              scopes: ['write'],
              many: true,
            },
          ],
        },
        'capability',
      );
      expect(move.resourceArguments).toEqual([
        { name: 'source', canonicalizer: 'path', role: 'delete' },
        {
          name: 'destinations',
          canonicalizer: 'path',
          role: 'write',
          scopes: ['write'],
          many: true,
        },
      ]);
      const sixteen = Array.from({ length: 16 }, (_, i) => ({ ...arg, name: `p${i}` }));
      expect(
        capabilityFromRequest({ ...cap, resourceArguments: sixteen }, 'capability')
          .resourceArguments,
      ).toHaveLength(16);
    });

    it.each([
      [{ risk: 0 }, 'capability.risk', /RISK_CLASS_UNSPECIFIED/],
      [{ risk: 42 }, 'capability.risk', /unknown value 42/],
      [{ effects: [1, 0] }, 'capability.effects[1]', /EFFECT_UNSPECIFIED/],
      [{ effects: [9] }, 'capability.effects[0]', /unknown value 9/],
      [{ effects: [1, 2, 3, 4, 5, 1] }, 'capability.effects', /more than 5/],
      [
        { resourceArguments: [{ ...arg, canonicalizer: 0 }] },
        'capability.resourceArguments[0].canonicalizer',
        /RESOURCE_KIND_UNSPECIFIED/,
      ],
      [
        { resourceArguments: [{ ...arg, role: 0 }] },
        'capability.resourceArguments[0].role',
        /RESOURCE_ROLE_UNSPECIFIED/,
      ],
      [
        { resourceArguments: [{ ...arg, role: 9 }] },
        'capability.resourceArguments[0].role',
        /unknown value 9/,
      ],
      [
        { resourceArguments: [arg, { ...arg, role: core.ResourceRole.RESOURCE_ROLE_WRITE }] },
        'capability.resourceArguments[1].name',
        /duplicates "path"/,
      ],
      [
        { resourceArguments: Array.from({ length: 17 }, (_, i) => ({ ...arg, name: `p${i}` })) },
        'capability.resourceArguments',
        /more than 16/,
      ],
      [
        { resourceArguments: [{ ...arg, scopes: Array.from({ length: 33 }, (_, i) => `s${i}`) }] },
        'capability.resourceArguments[0].scopes',
        /more than 32/,
      ],
    ])('%j -> %s', (patch, field, message) => {
      expect(
        invalid(() => capabilityFromRequest({ ...cap, ...patch }, 'capability'), field),
      ).toMatch(message);
    });

    it('requires the capability message', () => {
      invalid(() => capabilityFromRequest(undefined, 'capability'), 'capability');
    });

    it('maps the approval verdict and refuses APPROVAL_VERDICT_UNSPECIFIED', () => {
      expect(
        decideApprovalRequestFromProto({
          approvalId: 'apr_1',
          verdict: pb.ApprovalVerdict.APPROVAL_VERDICT_DENY,
        }),
      ).toEqual({ approvalId: 'apr_1', verdict: 'deny' });
      expect(
        invalid(
          () => decideApprovalRequestFromProto({ approvalId: 'apr_1', verdict: 0 }),
          'verdict',
        ),
      ).toMatch(/APPROVAL_VERDICT_UNSPECIFIED/);
      invalid(
        () =>
          decideApprovalRequestFromProto({
            approvalId: 'apr_1',
            verdict: pb.ApprovalVerdict.UNRECOGNIZED,
          }),
        'verdict',
      );
    });
  });

  describe('RequestApproval', () => {
    const request = (o: Partial<pb.RequestApprovalRequest>) =>
      requestApprovalRequestFromProto(pb.RequestApprovalRequest.fromPartial(o));

    it('maps the TTL Duration to millis and refuses malformed ones', () => {
      expect(request({ ttl: { seconds: 90, nanos: 500_000_000 } })).toMatchObject({
        ttlMs: 90_500,
      });
      expect(request({})).not.toHaveProperty('ttlMs');
      expect(durationFromProto({ seconds: -1, nanos: -500_000_000 }, 'd')).toBe(-1500);
      invalid(() => request({ ttl: { seconds: 1, nanos: -1 } }), 'ttl.nanos');
      invalid(() => request({ ttl: { seconds: 1e12, nanos: 0 } }), 'ttl.seconds');
    });
  });

  describe('domain -> message', () => {
    it('writes a grant with Timestamps, the oneof members and the revision', () => {
      const grant: Grant = {
        id: 'grt_1',
        principalId: 'a',
        capabilities: ['fs/*'],
        resourcePatterns: [
          { kind: 'path_prefix', prefix: '/d' },
          {
            kind: 'host_set',
            hosts: ['h.example.com'],
            cidrs: [],
            schemes: ['https'],
            ports: [8443],
          },
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
      const wire = grantToProto(grant);
      // What travels decodes to the same message (ts-proto encodes what the controller returns).
      const expected: core.Grant = {
        id: 'grt_1',
        principalId: 'a',
        capabilities: ['fs/*'],
        resourcePatterns: [
          { pattern: { $case: 'pathPrefix', value: '/d' } },
          {
            pattern: {
              $case: 'hostSet',
              value: { hosts: ['h.example.com'], cidrs: [], schemes: ['https'], ports: [8443] },
            },
          },
          { pattern: { $case: 'exactId', value: 'x' } },
        ],
        scopes: [],
        createdAt: { seconds: Math.floor(T / 1000), nanos: 250_000_000 },
        revokedAt: { seconds: Math.floor(T / 1000), nanos: 251_000_000 },
        revision: 4,
        argumentConstraints: [
          {
            argument: 'mode',
            rule: {
              $case: 'oneOf',
              value: {
                values: [
                  { value: { $case: 'stringValue', value: 'a' } },
                  { value: { $case: 'numberValue', value: 2 } },
                  { value: { $case: 'boolValue', value: false } },
                  { value: { $case: 'nullValue', value: true } },
                ],
              },
            },
          },
          { argument: 'n', rule: { $case: 'range', value: { max: 5 } } },
          { argument: 'f', rule: { $case: 'absent', value: {} } },
        ],
      };
      expect(core.Grant.decode(core.Grant.encode(wire).finish())).toEqual(expected);
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
        resourceArguments: [
          { name: 'cwd', canonicalizer: 'path', role: 'read' },
          { name: 'hosts', canonicalizer: 'url', role: 'fetch', scopes: ['net'], many: true },
        ],
        definitionDigest: 'a'.repeat(64),
      };
      expect(capabilityFromRequest(capabilityToProto(c), 'c')).toEqual(c);
      expect(capabilityFromProto(capabilityToProto(c))).toEqual(c);
      expect(grantFromProto(grantToProto(grantWithHostSet))).toEqual(grantWithHostSet);
      const a: Approval = {
        id: 'apr_1',
        principalId: 'a',
        capabilityId: 'shell/exec',
        bindingDigest: 'sha256:' + '0'.repeat(64),
        state: 'approved',
        expiresAt: T,
        decidedBy: 'op',
      };
      expect(approvalToProto(a)).toEqual({
        id: 'apr_1',
        principalId: 'a',
        capabilityId: 'shell/exec',
        bindingDigest: a.bindingDigest,
        state: core.ApprovalState.APPROVAL_STATE_APPROVED,
        expiresAt: { seconds: Math.floor(T / 1000), nanos: 250_000_000 },
        consumedAt: undefined,
        decidedBy: 'op',
      });
    });

    it('writes pre-epoch millis with non-negative nanos', () => {
      expect(toTimestamp(-1)).toEqual({ seconds: -1, nanos: 999_000_000 });
    });
  });
});
