import { createUrlCanonicalizer } from '@hcp/canonical';
import { UpstreamClient, type UpstreamCallResult } from '../providers/upstream-client';
import {
  FETCH_PROVIDER_VERSION,
  ORIGIN_HELLO_TEXT,
  ORIGIN_SECRET_TEXT,
  PUBLIC_TEST_HOST,
  PUBLIC_TEST_IP,
  fetchProviderRequired,
  fetchProviderConfig,
  startRecordingOrigin,
  testResolver,
  type RecordingOrigin,
} from '../testing/fetch-provider';
import { startEgressProxy, type EgressRefusal, type RunningEgressProxy } from './egress-proxy';

// The real mcp-server-fetch (PyPI) runs as a child over stdio. Without it this suite cannot
// prove anything: CI fails, a developer machine skips loudly with the command to install it.
const available = fetchProviderRequired('the fetch provider end-to-end tests');
const describeIfInstalled = available ? describe : describe.skip;

function textOf(result: UpstreamCallResult): string {
  return result.content.map((c) => (c as { type: string; text?: string }).text ?? '').join('');
}

describeIfInstalled(
  'mcp-server-fetch through the egress proxy (real server, loopback only)',
  () => {
    jest.setTimeout(60_000);

    let origin: RecordingOrigin;
    let proxy: RunningEgressProxy;
    let refusals: EgressRefusal[];
    /** One child process per guard setting, started on first use and shared by its tests. */
    const clients = new Map<boolean, Promise<UpstreamClient>>();

    beforeAll(async () => {
      origin = await startRecordingOrigin();
      proxy = await startEgressProxy({
        providerId: 'fetch',
        canonicalizer: createUrlCanonicalizer({ resolver: testResolver }),
        onRefusal: (e) => refusals.push(e),
        // The test's origin stands in for every vetted public address.
        dial: (ip, port) => origin.dial(ip, port),
      });
    });
    afterAll(async () => {
      for (const client of clients.values()) await (await client).close();
      await proxy.close();
      await origin.close();
    });
    beforeEach(() => {
      refusals = [];
      (origin.requests as unknown[]).length = 0;
      (origin.dialled as unknown[]).length = 0;
    });

    const withClient = async <T>(
      upstreamGuardOff: boolean,
      body: (client: UpstreamClient) => Promise<T>,
    ): Promise<T> => {
      let client = clients.get(upstreamGuardOff);
      if (client === undefined) {
        client = UpstreamClient.connect(
          fetchProviderConfig({ proxyPort: proxy.port, upstreamGuardOff }),
          { connectTimeoutMs: 20_000 },
        );
        clients.set(upstreamGuardOff, client);
      }
      return body(await client);
    };

    it(`serves mcp-server-fetch ${FETCH_PROVIDER_VERSION} with its one fetch tool`, async () => {
      await withClient(false, async (client) => {
        expect(client.serverInfo).toMatchObject({
          name: 'mcp-fetch',
          version: FETCH_PROVIDER_VERSION,
        });
        expect((await client.listTools()).map((t) => t.name)).toEqual(['fetch']);
      });
    });

    describe.each([
      ['with the server guard off (the proxy alone)', true],
      ['with the server guard on (both guards)', false],
    ])('%s', (_label, upstreamGuardOff) => {
      it('fetches an allowed public host: the origin content reaches the tool output', async () => {
        await withClient(upstreamGuardOff, async (client) => {
          const result = await client.callTool('fetch', {
            url: `http://${PUBLIC_TEST_HOST}/hello`,
          });
          expect(result.isError).toBe(false);
          expect(textOf(result)).toContain(ORIGIN_HELLO_TEXT);
          expect(origin.requests.map((r) => [r.path, r.host])).toEqual([
            ['/hello', PUBLIC_TEST_HOST],
          ]);
          expect(origin.dialled).toEqual([PUBLIC_TEST_IP]);
          expect(refusals).toEqual([]);
        });
      });

      // The rule is what the proxy sees, after the server's own URL parsing: pydantic normalises
      // 0x7f000001 to 127.0.0.1, and httpx writes an IPv6 host unbracketed in the absolute-form
      // request target (`GET http://::ffff:7f00:1:<port>/`), which does not parse: refused as invalid.
      it.each([
        ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', 'url.private_address'],
        ['loopback', 'http://127.0.0.1:{port}/secret', 'url.private_address'],
        ['hex-encoded loopback', 'http://0x7f000001:{port}/secret', 'url.private_address'],
        ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]:{port}/secret', 'url.unparsable'],
      ])('refuses %s: isError, the origin records nothing', async (_what, template, rule) => {
        const url = template.replace('{port}', String(origin.port));
        await withClient(upstreamGuardOff, async (client) => {
          const result = await client.callTool('fetch', { url });
          expect(result.isError).toBe(true);
          expect(textOf(result)).not.toContain(ORIGIN_SECRET_TEXT);
          expect(origin.requests).toEqual([]);
          expect(origin.dialled).toEqual([]);
          if (upstreamGuardOff) {
            // The refusal happened at the proxy, and was reported for the audit.
            expect(refusals).toEqual([
              expect.objectContaining({
                providerId: 'fetch',
                method: 'GET',
                rule,
                reason: rule === 'url.unparsable' ? 'INPUT_INVALID' : 'RESOURCE_DENIED',
              }),
            ]);
            expect(textOf(result)).toContain('status code 403');
          }
        });
      });

      it('refuses a redirect from the allowed host to loopback at the hop', async () => {
        const secret = `http://127.0.0.1:${origin.port}/secret`;
        const start = `http://${PUBLIC_TEST_HOST}/redirect?to=${encodeURIComponent(secret)}`;
        await withClient(upstreamGuardOff, async (client) => {
          const result = await client.callTool('fetch', { url: start });
          expect(result.isError).toBe(true);
          expect(textOf(result)).not.toContain(ORIGIN_SECRET_TEXT);
          // The first hop went out; the second never reached the origin.
          expect(origin.requests.map((r) => r.path)).toEqual([
            `/redirect?to=${encodeURIComponent(secret)}`,
          ]);
          if (upstreamGuardOff) {
            expect(refusals).toEqual([
              expect.objectContaining({
                rawUrl: secret,
                canonical: `${secret}`,
                rule: 'url.private_address',
                reason: 'RESOURCE_DENIED',
              }),
            ]);
          }
        });
      });

      it('follows a redirect between allowed URLs (neighbour of the refused hop)', async () => {
        await withClient(upstreamGuardOff, async (client) => {
          const result = await client.callTool('fetch', {
            url: `http://${PUBLIC_TEST_HOST}/redirect?to=${encodeURIComponent('/hello')}`,
          });
          expect(result.isError).toBe(false);
          expect(textOf(result)).toContain(ORIGIN_HELLO_TEXT);
          expect(origin.requests.map((r) => r.path)).toEqual(['/redirect?to=%2Fhello', '/hello']);
          expect(refusals).toEqual([]);
        });
      });
    });

    it('reports an https URL refused at CONNECT as an isError result', async () => {
      await withClient(true, async (client) => {
        const result = await client.callTool('fetch', { url: 'https://127.0.0.1/secret' });
        expect(result.isError).toBe(true);
        expect(refusals).toEqual([
          expect.objectContaining({ method: 'CONNECT', rawUrl: '127.0.0.1:443' }),
        ]);
        expect(origin.requests).toEqual([]);
      });
    });
  },
);
