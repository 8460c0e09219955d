import { startGrantStore, type RunningGrantStore } from '@hcp/grant-store';
import { callUnary, createGrpcClient, InProcessBus } from '@hcp/platform';
import { core, grants } from '@hcp/proto';
import { EXIT } from './cli-approvals';
import { runCapabilitiesCli } from './cli-capabilities';

// The capabilities CLI (re-approving a changed tool definition, I1) against a real grant-store.

const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

const echo: core.Capability = {
  id: 'up/echo',
  provider: 'up',
  tool: 'echo',
  effects: [core.Effect.EFFECT_READ],
  risk: core.RiskClass.RISK_CLASS_LOW,
  approvalRequired: false,
  requiredScopes: [],
  // Two resource arguments, so a re-pin is seen to keep every one with its role and scopes.
  resourceArguments: [
    {
      name: 'source',
      canonicalizer: core.ResourceKind.RESOURCE_KIND_PATH,
      role: core.ResourceRole.RESOURCE_ROLE_READ,
      scopes: [],
      many: true,
    },
    {
      name: 'to',
      canonicalizer: core.ResourceKind.RESOURCE_KIND_URL,
      role: core.ResourceRole.RESOURCE_ROLE_SEND,
      scopes: ['send'],
      many: false,
    },
  ],
  definitionDigest: OLD,
};

describe('hcp capabilities (CLI)', () => {
  const bus = new InProcessBus();
  let store: RunningGrantStore;
  let client: grants.GrantStoreClient;

  async function hcp(args: string): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCapabilitiesCli(
      args.split(' '),
      { HCP_GRANT_STORE_URL: store.url },
      { out: (l) => out.push(l), err: (l) => err.push(l) },
    );
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  beforeAll(async () => {
    store = await startGrantStore({ db: { kind: 'pglite' }, bus, port: 0 });
    client = createGrpcClient(grants.GrantStoreClient, store.url);
    await callUnary(client.putCapability.bind(client), { capability: echo });
  });
  afterAll(async () => {
    client?.close();
    await store?.close();
    await bus.close();
  });

  it('lists the pins and re-pins one capability to the new digest, keeping the rest of the entry', async () => {
    const listed = await hcp('capabilities list');
    expect(listed.code).toBe(EXIT.ok);
    expect(listed.out).toContain(`up/echo`);
    expect(listed.out).toContain(OLD);
    const pinned = await hcp(`capabilities pin up/echo ${NEW}`);
    expect(pinned).toMatchObject({ code: EXIT.ok });
    const after = await callUnary(client.getCapability.bind(client), { capabilityId: 'up/echo' });
    expect(after.capability).toEqual({ ...echo, definitionDigest: NEW });
  });

  it('refuses a malformed digest or an unknown capability and changes nothing', async () => {
    expect((await hcp('capabilities pin up/echo sha256:xyz')).code).toBe(EXIT.usage);
    const unknown = await hcp(`capabilities pin up/nope ${NEW}`);
    expect(unknown.code).toBe(EXIT.refused);
    const after = await callUnary(client.getCapability.bind(client), { capabilityId: 'up/echo' });
    expect(after.capability?.definitionDigest).toBe(NEW);
  });
});
