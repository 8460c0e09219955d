import { approvalBindingDigest, argumentsDigest, type PrincipalKind } from '@hcp/core';
import { startGrantStore, type RunningGrantStore } from '@hcp/grant-store';
import { callUnary, createGrpcClient, InProcessBus, mintToken } from '@hcp/platform';
import { core, grants } from '@hcp/proto';
import { EXIT, runCli } from './cli-approvals';

// The approvals CLI against a real grant-store (PGlite, in process, gRPC on loopback) that
// verifies operator tokens as the embedded stack does once it passes `verifier`.

const auth = { issuer: 'hcp-embedded', audience: 'hcp', hs256Secret: 'c'.repeat(32) };

const exec: core.Capability = {
  id: 'shell/exec',
  provider: 'shell',
  tool: 'exec',
  effects: [core.Effect.EFFECT_EXECUTE],
  risk: core.RiskClass.RISK_CLASS_HIGH,
  approvalRequired: true,
  requiredScopes: [],
  resourceArguments: [],
  definitionDigest: '',
};

describe('hcp approvals (CLI)', () => {
  const bus = new InProcessBus();
  let store: RunningGrantStore;
  let client: grants.GrantStoreClient;
  let operator: string;
  let agent: string;

  const token = (id: string, kind: PrincipalKind) => mintToken({ id, kind }, auth);

  /** Runs the CLI as a shell would, capturing both streams. */
  async function hcp(
    args: string,
    env: Record<string, string> = {},
  ): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(
      args.split(' ').filter((a) => a !== ''),
      { HCP_GRANT_STORE_URL: store.url, ...env },
      { out: (l) => out.push(l), err: (l) => err.push(l) },
    );
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function requested(principalId: string, cmd: string): Promise<string> {
    const res = await callUnary(
      client.requestApproval.bind(client),
      grants.RequestApprovalRequest.fromPartial({
        principalId,
        capabilityId: 'shell/exec',
        bindingDigest: approvalBindingDigest({
          principalId,
          capabilityId: 'shell/exec',
          canonicalResources: [],
          argumentsDigest: argumentsDigest({ cmd }),
        }),
        summary: `run ${cmd}`,
      }),
    );
    return res.approval!.id;
  }

  beforeAll(async () => {
    store = await startGrantStore({ db: { kind: 'pglite' }, bus, port: 0, verifier: auth });
    client = createGrpcClient(grants.GrantStoreClient, store.url);
    await callUnary(client.putCapability.bind(client), { capability: exec });
    operator = await token('ops-1', 'operator');
    agent = await token('alice', 'agent');
  });
  afterAll(async () => {
    client?.close();
    await store?.close();
    await bus.close();
  });

  it('list shows what waits; show shows one; approve decides it with the token as decided_by', async () => {
    await expect(hcp('approvals list', { HCP_OPERATOR_TOKEN: operator })).resolves.toEqual({
      code: EXIT.ok,
      out: 'no approvals waiting',
      err: '',
    });
    const id = await requested('alice', 'ls');
    const list = await hcp(`approvals list --token ${operator}`);
    expect(list.code).toBe(EXIT.ok);
    expect(list.out).toMatch(new RegExp(`^${id}\\talice\\tshell/exec\\t.*\\trun ls$`, 'm'));

    const show = await hcp(`approvals show ${id}`);
    expect(show.code).toBe(EXIT.ok);
    expect(show.out).toMatch(/^state +pending$/m);
    expect(show.out).toMatch(/^summary +run ls$/m);

    const approve = await hcp(`approvals approve ${id}`, { HCP_OPERATOR_TOKEN: operator });
    expect(approve).toMatchObject({ code: EXIT.ok, err: '' });
    expect(approve.out).toMatch(`approved ${id}: shell/exec for alice, decided by ops-1`);
    expect((await hcp(`approvals show ${id}`)).out).toMatch(/^decided by +ops-1$/m);
    expect((await hcp(`approvals list --token ${operator}`)).out).toBe('no approvals waiting');
  });

  it('refuses an agent token with exit 1 and says why; the operator neighbour works', async () => {
    const id = await requested('alice', 'rm');
    const refused = await hcp(`approvals approve ${id} --token ${agent}`);
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.err).toMatch(/refused: PERMISSION_DENIED \(PRINCIPAL_UNAUTHENTICATED\)/);
    expect(refused.err).toMatch(/hint: .*operator token/);
    expect((await hcp(`approvals list --token ${agent}`)).code).toBe(EXIT.refused);
    await expect(hcp(`approvals deny ${id} --token ${operator}`)).resolves.toMatchObject({
      code: EXIT.ok,
      out: expect.stringMatching(`^denied ${id}`) as unknown,
    });
  });

  it('refuses self-approval and a second decision with exit 1', async () => {
    const id = await requested('ops-2', 'sudo');
    const self = await hcp(`approvals approve ${id} --token ${await token('ops-2', 'operator')}`);
    expect(self.code).toBe(EXIT.refused);
    expect(self.err).toMatch(/FAILED_PRECONDITION.*cannot decide its own approval/);
    expect((await hcp(`approvals approve ${id} --token ${operator}`)).code).toBe(EXIT.ok);
    const again = await hcp(`approvals deny ${id} --token ${operator}`);
    expect(again.code).toBe(EXIT.refused);
    expect(again.err).toMatch(/already approved/);
  });

  it('refuses a forged token and an unknown id with exit 1', async () => {
    const forged = await mintToken(
      { id: 'ops-1', kind: 'operator' },
      { ...auth, hs256Secret: 'f'.repeat(32) },
    );
    const id = await requested('alice', 'cat');
    const r = await hcp(`approvals approve ${id} --token ${forged}`);
    expect(r.code).toBe(EXIT.refused);
    expect(r.err).toMatch(/UNAUTHENTICATED.*signature/);
    const unknown = await hcp(`approvals show apr_nope`);
    expect(unknown.code).toBe(EXIT.refused);
    expect(unknown.err).toMatch(/NOT_FOUND/);
  });

  it('list pages through grant-store up to --limit and filters by --principal', async () => {
    for (const cmd of ['a', 'b', 'c']) await requested('zed', cmd);
    const two = await hcp(`approvals list --principal zed --limit 2 --token ${operator}`);
    expect(two.out.split('\n')).toHaveLength(4); // header, two rows, "more waiting"
    expect(two.out).toMatch(/more waiting/);
    const json = await hcp(`approvals list --principal zed --json --token ${operator}`);
    const parsed = JSON.parse(json.out) as { approvals: { summary: string }[] };
    expect(parsed.approvals.map((a) => a.summary)).toEqual(['run a', 'run b', 'run c']);
  });

  it.each<[string, RegExp]>([
    ['', /no command given/],
    ['grants list', /unknown command group/],
    ['approvals', /no command given/],
    ['approvals purge', /unknown command 'purge'/],
    ['approvals approve', /approval id is required/],
    ['approvals show apr_1 extra', /unexpected 'extra'/],
    ['approvals show a/b', /not an approval id/],
    ['approvals list --limit 0', /--limit/],
    ['approvals list --limit 5000', /--limit/],
    ['approvals show apr_1 --limit 3', /list only/],
    ['approvals list --bogus', /bogus/],
    ['approvals approve apr_1', /operator token is required/],
    ['approvals approve apr_1 --token not-a-jwt', /not a JWT/],
    ['approvals list --grant-store nowhere', /not host:port/],
    ['approvals list --grant-store localhost:99999', /not host:port/],
  ])('exits 2 with a usage error for `%s`', async (args, message) => {
    const r = await hcp(args);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toMatch(message);
  });

  it('prints help with exit 0', async () => {
    const r = await hcp('--help');
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toMatch(/^usage: hcp approvals/);
  });

  it('exits 3 when grant-store cannot be reached', async () => {
    // A port nothing listens on: a freshly closed grant-store.
    const gone = await startGrantStore({ db: { kind: 'pglite' }, bus, port: 0, verifier: auth });
    const url = gone.url;
    await gone.close();
    const r = await hcp(`approvals list --grant-store ${url} --token ${operator}`);
    expect(r.code).toBe(EXIT.unavailable);
    expect(r.err).toMatch(/did not answer/);
  });
});
