import { argumentsDigest, canonicalJson, HcpError, type DecideRequestFacts } from '@hcp/core';
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

const ARGS = { path: '/data/a.txt' };
const FACTS: DecideRequestFacts = {
  principal: { id: 'alice', kind: 'agent' },
  session: { state: 'active', initialized: true, id: 's1', ownerPrincipalId: 'alice' },
  call: {
    capabilityId: 'fs/read_file',
    argumentsDigest: argumentsDigest(ARGS),
    arguments: ARGS,
    resource: {
      status: 'resolved',
      resource: { kind: 'path', raw: '/data/a.txt', canonical: '/data/a.txt' },
    },
    approvalId: 'apr_1',
  },
  endpointFamily: 'tools/call',
  traceId: 't1',
  auditAvailable: true,
};

/** The message as the PDP receives it: encoded and decoded by the generated codec. */
const overTheWire = (m: policy.DecideRequest) =>
  policy.DecideRequest.decode(policy.DecideRequest.encode(m).finish());

describe('Decide request converters', () => {
  it('round-trips the edge facts unchanged through the wire message', () => {
    expect(decideRequestFromProto(overTheWire(decideRequestToProto(FACTS)))).toEqual(FACTS);
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
        { ...wire, call: { ...call, resource: { facts: undefined } } },
        'request.call.resource',
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
