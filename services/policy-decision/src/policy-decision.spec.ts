import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { callUnary, createGrpcClient, InProcessBus, reasonOfGrpcError } from '@hcp/platform';
import { decisionFromProto, grants, policy, toTimestamp } from '@hcp/proto';
import {
  ALICE,
  CAPABILITIES,
  FIXTURES,
  FIXTURE_VERSIONS,
  GRANTS,
  NOW,
  activeSession,
  call,
  READ_DEFINITION_DIGEST,
  path,
} from '@hcp/policy/testing';
import {
  startPolicyDecision,
  GRANTS_CHANGED_SUBJECT,
  type RunningPolicyDecision,
} from './policy-decision';
import { MemoryGrantSource } from './testing/memory-grant-source';
import { decideRequestToWire, pipeRequestToWire } from './testing/wire-requests';

// Boots the real PDP (Nest gRPC + HTTP) on loopback with an in-memory grant source and calls it
// over the wire with the generated grpc-js client, as the edge will.
describe('policy-decision over gRPC and AuthZEN HTTP', () => {
  const TOKEN = 'authzen-test-token-0123456789';
  let source: MemoryGrantSource;
  let bus: InProcessBus;
  let pdp: RunningPolicyDecision;
  let client: policy.PolicyDecisionClient;

  beforeAll(async () => {
    source = new MemoryGrantSource(GRANTS, CAPABILITIES);
    bus = new InProcessBus();
    pdp = await startPolicyDecision({
      grantStoreUrl: 'unused',
      grantSource: source,
      bus,
      grpcPort: 0,
      httpPort: 0,
      maxStalenessMs: 60_000,
      fetchDeadlineMs: 1000,
      protocolVersions: FIXTURE_VERSIONS,
      authzenToken: TOKEN,
      clock: () => NOW,
    });
    client = createGrpcClient(policy.PolicyDecisionClient, pdp.grpcUrl);
  });

  afterAll(async () => {
    client.close();
    await pdp.close();
    await bus.close();
  });

  const decide = (req: policy.DecideRequest) => callUnary(client.decide.bind(client), req);

  it.each(FIXTURES.filter((f) => f.op !== 'peek').map((f) => [f.name, f] as const))(
    'fixture %s',
    async (_n, f) => {
      const res =
        f.op === 'decide'
          ? await decide(decideRequestToWire(f.request, source))
          : f.op === 'pipe'
            ? await callUnary(client.decidePipe.bind(client), pipeRequestToWire(f.request, source))
            : undefined;
      const d = decisionFromProto(res!.decision!);
      expect({ outcome: d.outcome, reason: d.reason }).toEqual({
        outcome: f.expect.outcome,
        reason: f.expect.reason,
      });
    },
  );

  it('denies within the bound after a revocation event on the bus', async () => {
    const read = decideRequestToWire({
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      call: call('fs/read_file', path('/data/app/r.txt'), {}),
    });
    expect(decisionFromProto((await decide(read)).decision!).reason).toBe('ALLOWED');
    const revision = source.revoke('grt_alice_read', NOW);
    const event = grants.GrantsChangedEvent.encode({
      principalId: 'alice',
      revision,
      grantId: 'grt_alice_read',
      kind: 2,
      capabilityId: '',
      changedAt: toTimestamp(NOW),
    }).finish();
    await bus.publish(GRANTS_CHANGED_SUBJECT, event);
    await new Promise((r) => setImmediate(r));
    expect(decisionFromProto((await decide(read)).decision!).reason).toBe('NO_MATCHING_GRANT');
    source.grants = [...GRANTS];
    source.revisions.set('alice', revision + 1);
    pdp.cache.invalidatePrincipal('alice', revision + 1);
  });

  describe('malformed input gets INVALID_ARGUMENT with INPUT_INVALID, never INTERNAL', () => {
    const good = decideRequestToWire({
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      call: call('fs/read_file', path('/data/app/a.txt'), {}),
    });
    const cases: [string, () => Promise<unknown>][] = [
      ['missing session', () => decide({ ...good, session: undefined })],
      [
        'unspecified session state',
        () => decide({ ...good, session: { ...good.session!, state: 0 } }),
      ],
      [
        'unspecified principal kind',
        () => decide({ ...good, principal: { ...good.principal!, kind: 0 } }),
      ],
      ['missing call', () => decide({ ...good, call: undefined })],
      [
        'malformed arguments digest',
        () => decide({ ...good, call: { ...good.call!, argumentsDigest: 'md5:abc' } }),
      ],
      [
        'resource with no case',
        () =>
          decide({
            ...good,
            call: {
              ...good.call!,
              resources: [{ argument: 'path', index: 0, facts: { facts: undefined } }],
            },
          }),
      ],
      [
        'more than 64 resources',
        () =>
          decide({
            ...good,
            call: {
              ...good.call!,
              resources: Array.from({ length: 65 }, (_, i) => ({
                ...good.call!.resources[0]!,
                index: i,
              })),
            },
          }),
      ],
      [
        'oversized capability id',
        () => decide({ ...good, call: { ...good.call!, capabilityId: 'x'.repeat(300) } }),
      ],
      ['unknown endpoint family', () => decide({ ...good, endpointFamily: 42 as never })],
      [
        'too many addresses',
        () =>
          decide({
            ...good,
            call: {
              ...good.call!,
              resources: [
                {
                  argument: 'url',
                  index: 0,
                  facts: {
                    facts: {
                      $case: 'resolved',
                      value: {
                        kind: 2,
                        raw: 'u',
                        canonical: 'https://x/',
                        host: 'x',
                        addresses: Array(65).fill('1.1.1.1'),
                        scheme: 'https',
                        port: 443,
                      },
                    },
                  },
                },
              ],
            },
          }),
      ],
      [
        'pipe without source',
        () => callUnary(client.decidePipe.bind(client), { source: undefined, target: good }),
      ],
      [
        'pipe with mismatched handle id',
        () =>
          callUnary(client.decidePipe.bind(client), {
            source: {
              handleId: 'hdl_a',
              handle: {
                id: 'hdl_b',
                ownerPrincipalId: 'alice',
                producingCapability: 'x',
                labels: {},
                sizeBytes: 1,
              },
            },
            target: good,
          }),
      ],
      [
        'explain without request',
        () => callUnary(client.explain.bind(client), { request: undefined }),
      ],
      // Arguments: bounded, an object, and exactly the text the arguments digest covers.
      ...(
        [
          ['arguments over 256 KiB', `{"a":"${'x'.repeat(256 * 1024)}"}`],
          ['arguments nested deeper than 32', `{"a":${'['.repeat(32)}${']'.repeat(32)}}`],
          ['arguments that are not JSON', '{"a":'],
          ['arguments that are not an object', '["a"]'],
          ['arguments the digest does not cover', '{"path":"/data/app/b.txt"}'],
          ['arguments in a non-canonical spelling', '{ "path": "/data/app/a.txt" }'],
        ] as const
      ).map(([name, json]): [string, () => Promise<unknown>] => [
        name,
        () => decide({ ...good, call: { ...good.call!, argumentsJson: json } }),
      ]),
    ];
    it.each(cases)('%s', async (_n, run) => {
      const err = (await run().then(
        () => undefined,
        (e: unknown) => e,
      )) as ServiceError | undefined;
      expect(err?.code).toBe(status.INVALID_ARGUMENT);
      expect(reasonOfGrpcError(err!)?.reason).toBe('INPUT_INVALID');
    });
    it('accepts the well-formed neighbour', async () => {
      expect(decisionFromProto((await decide(good)).decision!).outcome).toBe('allow');
    });
    it('accepts arguments at the bounds, and derives the digest when none was sent', async () => {
      const deep = `{"a":${'['.repeat(31)}${']'.repeat(31)}}`;
      const withArgs = decideRequestToWire({
        principal: ALICE,
        session: activeSession('alice'),
        now: NOW,
        call: call('fs/read_file', path('/data/app/a.txt'), JSON.parse(deep) as never),
      });
      expect(decisionFromProto((await decide(withArgs)).decision!).outcome).toBe('allow');
      const noDigest = { ...withArgs, call: { ...withArgs.call!, argumentsDigest: '' } };
      expect(decisionFromProto((await decide(noDigest)).decision!).outcome).toBe('allow');
    });
  });

  it('answers Explain with every check in order', async () => {
    const req = decideRequestToWire({
      principal: ALICE,
      session: activeSession('alice'),
      now: NOW,
      call: call('fs/read_file', path('/data/app_evil/x'), {}),
    });
    const res = await callUnary(
      client.explain.bind(client),
      { request: req },
      { metadata: new Metadata() },
    );
    expect(res.checkTraces.map((t) => t.check)).toEqual([
      'audit_path',
      'principal_binding',
      'protocol_state',
      'metadata_authority',
      'canonical_resource',
      'scoped_grant',
      'approval',
      'data_flow',
    ]);
    expect(decisionFromProto(res.decision!).reason).toBe('NO_MATCHING_GRANT');
  });

  describe('AuthZEN Access Evaluation API', () => {
    const post = (p: string, body: unknown, token: string | null = TOKEN) =>
      fetch(`http://127.0.0.1:${pdp.httpPort}${p}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    const evaluation = (resource: string) => ({
      subject: { type: 'agent', id: 'alice' },
      action: { name: 'fs/read_file', properties: { definition_digest: READ_DEFINITION_DIGEST } },
      resource: { type: 'path', id: resource },
    });

    it('allows a granted path and denies its sibling prefix, with the reason in context', async () => {
      const ok = await post('/access/v1/evaluation', evaluation('/data/app/a.txt'));
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({
        decision: true,
        context: { reason_code: 'ALLOWED' },
      });
      const no = await post('/access/v1/evaluation', evaluation('/data/app_evil/a.txt'));
      expect(await no.json()).toMatchObject({
        decision: false,
        context: { reason_code: 'NO_MATCHING_GRANT', invariant: 'I5' },
      });
    });

    it('refuses a pinned tool when the caller does not say which definition it sees', async () => {
      const body = { ...evaluation('/data/app/a.txt'), action: { name: 'fs/read_file' } };
      const res = await post('/access/v1/evaluation', body);
      expect(await res.json()).toMatchObject({
        decision: false,
        context: { reason_code: 'TOOL_DEFINITION_CHANGED' },
      });
    });

    it('refuses a path that is not canonical instead of matching it as text', async () => {
      const res = await post('/access/v1/evaluation', evaluation('/data/app/../../etc/passwd'));
      expect(await res.json()).toMatchObject({
        decision: false,
        context: { reason_code: 'INPUT_INVALID' },
      });
    });

    it('sends the resource to the named argument, else the first declared one', async () => {
      const named = (argument: string) => ({
        ...evaluation('/data/app/a.txt'),
        resource: { type: 'path', id: '/data/app/a.txt', properties: { argument } },
      });
      expect(await (await post('/access/v1/evaluation', named('path'))).json()).toMatchObject({
        decision: true,
      });
      expect(await (await post('/access/v1/evaluation', named('file'))).json()).toMatchObject({
        decision: false,
        context: { reason_code: 'INPUT_INVALID' },
      });
      // One resource per evaluation: a capability that declares two cannot be decided here.
      const move = {
        subject: { type: 'agent', id: 'alice' },
        action: { name: 'fs/move_file' },
        resource: { type: 'path', id: '/data/app/out/a.txt' },
      };
      expect(await (await post('/access/v1/evaluation', move)).json()).toMatchObject({
        decision: false,
        context: { reason_code: 'INPUT_INVALID' },
      });
    });

    it('decides a URL on its scheme and port: the default port, or one a grant lists', async () => {
      const fetchOf = (url: string) => ({
        subject: { type: 'agent', id: 'alice' },
        action: { name: 'fetch/fetch' },
        resource: { type: 'url', id: url },
      });
      const decide = async (url: string) =>
        (await (await post('/access/v1/evaluation', fetchOf(url))).json()) as {
          decision: boolean;
          context: { reason_code: string };
        };
      await expect(decide('https://api.example.com/v1')).resolves.toMatchObject({
        decision: true,
      });
      await expect(decide('https://api.example.com:8443/v1')).resolves.toMatchObject({
        decision: true,
      });
      await expect(decide('https://api.example.com:9443/v1')).resolves.toMatchObject({
        decision: false,
        context: { reason_code: 'NO_MATCHING_GRANT' },
      });
    });

    it('evaluates a batch with defaults and honours deny_on_first_deny', async () => {
      const body = {
        subject: { type: 'agent', id: 'alice' },
        action: { name: 'fs/read_file', properties: { definition_digest: READ_DEFINITION_DIGEST } },
        evaluations: [
          { resource: { type: 'path', id: '/data/app/1' } },
          { resource: { type: 'path', id: '/etc/shadow' } },
          { resource: { type: 'path', id: '/data/app/3' } },
        ],
      };
      const all = (await (await post('/access/v1/evaluations', body)).json()) as {
        evaluations: { decision: boolean }[];
      };
      expect(all.evaluations.map((e) => e.decision)).toEqual([true, false, true]);
      const first = (await (
        await post('/access/v1/evaluations', {
          ...body,
          options: { evaluations_semantic: 'deny_on_first_deny' },
        })
      ).json()) as { evaluations: unknown[] };
      expect(first.evaluations).toHaveLength(2);
    });

    it('rejects malformed bodies with 400 and a typed code, and unauthenticated callers with 401', async () => {
      const bad = await post('/access/v1/evaluation', { subject: { type: 'agent' }, action: {} });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { code: 'INPUT_INVALID' } });
      const badItem = await post('/access/v1/evaluations', {
        evaluations: [{ action: { name: 'x' } }],
      });
      expect(badItem.status).toBe(400);
      expect(
        (await post('/access/v1/evaluation', evaluation('/data/app/a.txt'), null)).status,
      ).toBe(401);
      expect(
        (
          await post(
            '/access/v1/evaluation',
            evaluation('/data/app/a.txt'),
            'wrong-token-wrong-token-xx',
          )
        ).status,
      ).toBe(401);
    });
  });
});
