import { argumentsDigest, canonicalJson, HcpError, type DecideRequestFacts } from '@hcp/core';
import type * as core from '../generated/hcp/core/v1/core';
import * as policy from '../generated/hcp/policy/v1/policy_decision';
import {
  DECIDE_LIMITS,
  decideRequestFromProto,
  decideRequestToProto,
  jsonDepth,
  pipeRequestFromProto,
  pipeRequestToProto,
} from './decide';

/** Runs `fn`, expecting an INPUT_INVALID naming `field`. */
function invalid(fn: () => unknown, field: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e: unknown) {
    err = e;
  }
  expect(err).toBeInstanceOf(HcpError);
  expect((err as HcpError).reason).toBe('INPUT_INVALID');
  expect((err as HcpError).details['field']).toBe(field);
}

const ARGS = { source: '/data/a.txt', url: 'https://api.example.com:8443/x' };
const FACTS: DecideRequestFacts = {
  principal: { id: 'alice', kind: 'agent' },
  session: { state: 'active', initialized: true, id: 's1', ownerPrincipalId: 'alice' },
  call: {
    capabilityId: 'fs/upload',
    argumentsDigest: argumentsDigest(ARGS),
    arguments: ARGS,
    resources: [
      {
        argument: 'source',
        index: 0,
        facts: {
          status: 'resolved',
          resource: { kind: 'path', raw: '/data/a.txt', canonical: '/data/a.txt' },
        },
      },
      {
        argument: 'url',
        index: 0,
        facts: {
          status: 'resolved',
          resource: {
            kind: 'url',
            raw: 'https://api.example.com:8443/x',
            canonical: 'https://api.example.com:8443/x',
            host: 'api.example.com',
            addresses: ['203.0.113.7'],
            scheme: 'https',
            port: 8443,
          },
        },
      },
      {
        argument: 'targets',
        index: 3,
        facts: {
          status: 'denied',
          kind: 'path',
          raw: '../etc',
          rule: 'path.outside_roots',
          detail: 'outside every root',
        },
      },
    ],
    approvalId: 'apr_1',
  },
  endpointFamily: 'tools/call',
  traceId: 't1',
  auditAvailable: true,
};

/** The request's URL resource (the second) with its resolved fields patched. */
function withResolved(
  call: policy.CallFacts,
  patch: { scheme?: string; port?: number },
): core.ArgumentResource {
  const r = call.resources[1]!;
  const facts = r.facts!.facts;
  if (facts?.$case !== 'resolved') throw new Error('fixture: the URL resource is resolved');
  return { ...r, facts: { facts: { $case: 'resolved', value: { ...facts.value, ...patch } } } };
}

/** The message as the PDP receives it: encoded and decoded by the generated codec. */
const overTheWire = (m: policy.DecideRequest) =>
  policy.DecideRequest.decode(policy.DecideRequest.encode(m).finish());

describe('Decide request converters', () => {
  it('round-trips the edge facts unchanged through the wire message', () => {
    expect(decideRequestFromProto(overTheWire(decideRequestToProto(FACTS)))).toEqual(FACTS);
  });

  it('sends no resources as an empty list, and reads an empty list as none', () => {
    const bare: DecideRequestFacts = { ...FACTS, call: { ...FACTS.call, resources: [] } };
    const wire = overTheWire(decideRequestToProto(bare));
    expect(wire.call!.resources).toEqual([]);
    expect(decideRequestFromProto(wire).call).not.toHaveProperty('resources');
  });

  it('keeps 64 resources and refuses the 65th', () => {
    const wire = decideRequestToProto(FACTS);
    const one = wire.call!.resources[0]!;
    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ ...one, argument: 'paths', index: i }));
    const ok = decideRequestFromProto({ ...wire, call: { ...wire.call!, resources: many(64) } });
    expect(ok.call.resources).toHaveLength(64);
    invalid(
      () => decideRequestFromProto({ ...wire, call: { ...wire.call!, resources: many(65) } }),
      'request.call.resources',
    );
  });

  it('derives the digest from the arguments, and binds `{}` when there are neither', () => {
    const wire = decideRequestToProto(FACTS);
    const noDigest = { ...wire, call: { ...wire.call!, argumentsDigest: '' } };
    expect(decideRequestFromProto(noDigest).call.argumentsDigest).toBe(argumentsDigest(ARGS));
    const bare = { ...wire, call: { ...wire.call!, argumentsDigest: '', argumentsJson: '' } };
    expect(decideRequestFromProto(bare).call.argumentsDigest).toBe(argumentsDigest({}));
  });

  it('reads an empty principal id as unauthenticated and an unset family as tools/call', () => {
    const wire = decideRequestToProto(FACTS);
    const r = decideRequestFromProto({
      ...wire,
      principal: { id: '', kind: 0, displayName: '' },
      endpointFamily: 0,
    });
    expect(r.principal).toBeUndefined();
    expect(r.endpointFamily).toBe('tools/call');
  });

  describe('refuses by field', () => {
    const wire = decideRequestToProto(FACTS);
    const call = wire.call!;
    it.each<[string, policy.DecideRequest, string]>([
      ['missing session', { ...wire, session: undefined }, 'request.session'],
      [
        'session state',
        { ...wire, session: { ...wire.session!, state: 0 } },
        'request.session.state',
      ],
      ['principal kind', { ...wire, principal: { ...wire.principal!, kind: 0 } }, 'principal.kind'],
      ['missing call', { ...wire, call: undefined }, 'request.call'],
      [
        'digest shape',
        { ...wire, call: { ...call, argumentsDigest: 'md5:abc' } },
        'request.call.arguments_digest',
      ],
      [
        'resource without case',
        {
          ...wire,
          call: { ...call, resources: [{ ...call.resources[0]!, facts: { facts: undefined } }] },
        },
        'request.call.resources[0].facts',
      ],
      [
        'resource without facts',
        { ...wire, call: { ...call, resources: [{ ...call.resources[0]!, facts: undefined }] } },
        'request.call.resources[0].facts',
      ],
      [
        'resource without argument',
        { ...wire, call: { ...call, resources: [{ ...call.resources[0]!, argument: '' }] } },
        'request.call.resources[0].argument',
      ],
      [
        'resource index past the bound',
        {
          ...wire,
          call: { ...call, resources: [{ ...call.resources[0]!, index: DECIDE_LIMITS.resources }] },
        },
        'request.call.resources[0].index',
      ],
      [
        'resource scheme in upper case',
        {
          ...wire,
          call: {
            ...call,
            resources: [call.resources[0]!, withResolved(call, { scheme: 'HTTPS' })],
          },
        },
        'request.call.resources[1].facts.resolved.scheme',
      ],
      [
        'resource port past 65535',
        {
          ...wire,
          call: { ...call, resources: [call.resources[0]!, withResolved(call, { port: 70_000 })] },
        },
        'request.call.resources[1].facts.resolved.port',
      ],
      [
        'capability id length',
        { ...wire, call: { ...call, capabilityId: 'x'.repeat(DECIDE_LIMITS.id + 1) } },
        'request.call.capability_id',
      ],
      ['endpoint family', { ...wire, endpointFamily: 42 as never }, 'request.endpoint_family'],
      [
        'arguments the digest does not cover',
        { ...wire, call: { ...call, argumentsJson: canonicalJson({ path: '/data/b.txt' }) } },
        'request.call.arguments_json',
      ],
      [
        'arguments not an object',
        { ...wire, call: { ...call, argumentsDigest: '', argumentsJson: '[1]' } },
        'request.call.arguments_json',
      ],
      [
        'arguments too deep',
        {
          ...wire,
          call: {
            ...call,
            argumentsDigest: '',
            argumentsJson: `{"a":${'['.repeat(32)}${']'.repeat(32)}}`,
          },
        },
        'request.call.arguments_json',
      ],
    ])('%s', (_name, message, field) => {
      invalid(() => decideRequestFromProto(message), field);
    });
  });

  it('converts a pipe request and checks that the handle is the one named', () => {
    const handle = {
      id: 'hdl_a',
      ownerPrincipalId: 'alice',
      producingCapability: 'fs/read_file',
      labels: { class: 'internal' },
      createdAt: 1000,
      expiresAt: 2000,
      sizeBytes: 3,
    };
    const pipe = { sourceHandleId: 'hdl_a', source: handle, target: FACTS };
    const wire = policy.DecidePipeRequest.decode(
      policy.DecidePipeRequest.encode(pipeRequestToProto(pipe)).finish(),
    );
    expect(pipeRequestFromProto(wire)).toEqual(pipe);
    invalid(() => pipeRequestFromProto({ ...wire, source: undefined }), 'source');
    invalid(
      () => pipeRequestFromProto({ ...wire, source: { ...wire.source!, handleId: 'hdl_b' } }),
      'source.handle.id',
    );
    invalid(() => pipeRequestFromProto({ ...wire, target: undefined }), 'target');
  });

  it('measures JSON depth without parsing, ignoring brackets inside strings', () => {
    expect(jsonDepth('{"a":[{"b":"[[["}]}')).toBe(3);
  });
});
