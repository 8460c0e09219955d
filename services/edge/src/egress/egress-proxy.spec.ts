import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createNetServer, Socket, type AddressInfo, type Server } from 'node:net';
import { createUrlCanonicalizer, type Resolver } from '@hcp/canonical';
import {
  ORIGIN_HELLO_TEXT,
  PUBLIC_TEST_HOST,
  PUBLIC_TEST_IP,
  startRecordingOrigin,
  testResolver,
  type RecordingOrigin,
} from '../testing/fetch-provider';
import {
  startEgressProxy,
  type EgressProxyOptions,
  type EgressRefusal,
  type RunningEgressProxy,
} from './egress-proxy';

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** Sends `target` (absolute-form, as a proxy client does) to the proxy. */
function viaProxy(
  proxy: RunningEgressProxy,
  target: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: proxy.port,
      method: init.method ?? 'GET',
      path: target,
      headers: init.headers,
      agent: false,
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a CONNECT tunnel; resolves with the status and, on 200, the tunnel socket. */
function connectVia(
  proxy: RunningEgressProxy,
  authority: string,
): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: proxy.port,
      method: 'CONNECT',
      path: authority,
      agent: false,
    });
    req.on('connect', (res, socket) => resolve({ status: res.statusCode ?? 0, socket }));
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, socket: res.socket });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Speaks plain HTTP/1.0 over a tunnel (no TLS needed to prove bytes reach the origin). */
function getOverTunnel(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.0\r\nHost: ${PUBLIC_TEST_HOST}\r\n\r\n`);
  });
}

describe('egress proxy', () => {
  let origin: RecordingOrigin;
  let proxy: RunningEgressProxy | undefined;
  let refusals: EgressRefusal[];

  const start = async (
    overrides: Partial<EgressProxyOptions> & { resolver?: Resolver; allowCidrs?: string[] } = {},
  ): Promise<RunningEgressProxy> => {
    const { resolver, allowCidrs, ...rest } = overrides;
    proxy = await startEgressProxy({
      providerId: 'fetch',
      canonicalizer: createUrlCanonicalizer({
        resolver: resolver ?? testResolver,
        ...(allowCidrs === undefined ? {} : { allowCidrs }),
      }),
      onRefusal: (e) => refusals.push(e),
      dial: (ip, port) => origin.dial(ip, port),
      ...rest,
    });
    return proxy;
  };

  beforeEach(async () => {
    origin = await startRecordingOrigin();
    refusals = [];
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await origin.close();
  });

  describe('absolute-form http requests', () => {
    it('forwards a public host to the vetted address, with the canonical path and Host', async () => {
      const p = await start();
      const reply = await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello?x=1`, {
        headers: { host: PUBLIC_TEST_HOST, 'proxy-connection': 'keep-alive' },
      });
      expect(reply.status).toBe(200);
      expect(reply.body).toContain(ORIGIN_HELLO_TEXT);
      expect(origin.dialled).toEqual([PUBLIC_TEST_IP]);
      expect(origin.requests).toEqual([
        { method: 'GET', path: '/hello?x=1', host: PUBLIC_TEST_HOST },
      ]);
      expect(refusals).toEqual([]);
    });

    it.each([
      ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', 'url.private_address'],
      ['loopback', 'http://127.0.0.1:8080/secret', 'url.private_address'],
      ['hex-encoded loopback', 'http://0x7f000001/secret', 'url.numeric_host'],
      ['integer-encoded loopback', 'http://2130706433/secret', 'url.numeric_host'],
      ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/secret', 'url.ipv4_mapped'],
      ['IPv6 loopback', 'http://[::1]/secret', 'url.private_address'],
      ['a name resolving to RFC 1918', 'http://private.example.test/secret', 'url.private_address'],
      ['credentials in the URL', `http://u:p@${PUBLIC_TEST_HOST}/hello`, 'url.credentials'],
    ])('refuses %s with 403 and never dials', async (_what, target, rule) => {
      const p = await start();
      const reply = await viaProxy(p, target);
      expect(reply.status).toBe(403);
      expect(reply.body).toBe(`hcp egress: refused (${rule})\n`);
      expect(origin.dialled).toEqual([]);
      expect(origin.requests).toEqual([]);
      expect(refusals).toEqual([
        expect.objectContaining({
          providerId: 'fetch',
          method: 'GET',
          rawUrl: target,
          rule,
          status: 'denied',
          reason: 'RESOURCE_DENIED',
        }),
      ]);
    });

    it('reports a name that does not resolve as RESOURCE_UNRESOLVABLE', async () => {
      const p = await start();
      const reply = await viaProxy(p, 'http://nowhere.example.test/');
      expect(reply.status).toBe(403);
      expect(refusals).toEqual([
        expect.objectContaining({
          rule: 'url.no_address',
          status: 'unresolvable',
          reason: 'RESOURCE_UNRESOLVABLE',
          canonical: 'http://nowhere.example.test/',
        }),
      ]);
      expect(origin.requests).toEqual([]);
    });

    it('admits an otherwise private range only through allowCidrs', async () => {
      const p = await start({ allowCidrs: ['10.0.0.0/8'] });
      const reply = await viaProxy(p, 'http://private.example.test/hello');
      expect(reply.status).toBe(200);
      expect(origin.dialled).toEqual(['10.0.0.5']);
      // allowCidrs for 10/8 does not open loopback.
      expect((await viaProxy(p, 'http://127.0.0.1/secret')).status).toBe(403);
      expect(origin.requests.map((r) => r.path)).toEqual(['/hello']);
    });

    it('re-checks each redirect hop: the public hop passes, the hop to loopback is refused', async () => {
      const p = await start();
      const secret = `http://127.0.0.1:${origin.port}/secret`;
      const first = await viaProxy(
        p,
        `http://${PUBLIC_TEST_HOST}/redirect?to=${encodeURIComponent(secret)}`,
      );
      expect(first.status).toBe(302);
      expect(first.headers.location).toBe(secret);

      // The client follows the Location as a new proxied request, as mcp-server-fetch does.
      const second = await viaProxy(p, first.headers.location!);
      expect(second.status).toBe(403);
      expect(origin.requests.map((r) => r.path)).toEqual([
        `/redirect?to=${encodeURIComponent(secret)}`,
      ]);
      expect(refusals).toEqual([
        expect.objectContaining({ rawUrl: secret, rule: 'url.private_address' }),
      ]);
    });

    it('resolves once and connects to that answer, so a rebinding resolver cannot swap the address', async () => {
      let calls = 0;
      const rebinding: Resolver = () => {
        calls += 1;
        return Promise.resolve(calls === 1 ? [PUBLIC_TEST_IP] : ['127.0.0.1']);
      };
      const p = await start({ resolver: rebinding });
      const reply = await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`);
      expect(reply.status).toBe(200);
      expect(calls).toBe(1);
      expect(origin.dialled).toEqual([PUBLIC_TEST_IP]);
      // The next request resolves again and now gets loopback: refused.
      expect((await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`)).status).toBe(403);
      expect(origin.dialled).toEqual([PUBLIC_TEST_IP]);
    });

    it('refuses https in absolute form (it must come as CONNECT) and origin-form requests', async () => {
      const p = await start();
      expect((await viaProxy(p, `https://${PUBLIC_TEST_HOST}/hello`)).status).toBe(403);
      expect((await viaProxy(p, '/hello')).status).toBe(403);
      expect(refusals.map((r) => [r.rule, r.reason])).toEqual([
        ['egress.scheme', 'RESOURCE_DENIED'],
        ['egress.not_proxy_request', 'INPUT_INVALID'],
      ]);
      expect(origin.requests).toEqual([]);
    });
  });

  describe('CONNECT tunnels', () => {
    it('tunnels to a public host:port and carries bytes both ways', async () => {
      const p = await start();
      const { status, socket } = await connectVia(p, `${PUBLIC_TEST_HOST}:443`);
      expect(status).toBe(200);
      const text = await getOverTunnel(socket, '/hello');
      expect(text).toContain(ORIGIN_HELLO_TEXT);
      expect(origin.dialled).toEqual([PUBLIC_TEST_IP]);
      expect(refusals).toEqual([]);
    });

    it.each([
      ['loopback', '127.0.0.1:443', 'url.private_address'],
      ['cloud metadata', '169.254.169.254:443', 'url.private_address'],
      ['hex-encoded loopback', '0x7f000001:443', 'url.numeric_host'],
      ['IPv4-mapped loopback', '[::ffff:127.0.0.1]:443', 'url.ipv4_mapped'],
      ['not host:port', `user@${PUBLIC_TEST_HOST}:443`, 'egress.bad_connect_target'],
      ['port out of range', `${PUBLIC_TEST_HOST}:70000`, 'egress.bad_connect_target'],
    ])('refuses %s with 403 and never dials', async (_what, authority, rule) => {
      const p = await start();
      const { status } = await connectVia(p, authority);
      expect(status).toBe(403);
      expect(origin.dialled).toEqual([]);
      expect(refusals).toEqual([
        expect.objectContaining({ method: 'CONNECT', rawUrl: authority, rule }),
      ]);
    });
  });

  describe('bounds', () => {
    it('answers 431 to an oversized request head', async () => {
      const p = await start({ maxHeaderBytes: 1024 });
      const reply = await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`, {
        headers: { 'x-big': 'a'.repeat(4096) },
      });
      expect(reply.status).toBe(431);
      expect(origin.requests).toEqual([]);
      // Allowed neighbour: a normal head passes.
      expect((await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`)).status).toBe(200);
    });

    it('answers 504 when the vetted address does not accept within connectTimeoutMs', async () => {
      const p = await start({
        connectTimeoutMs: 100,
        dial: () => new Socket(), // never connects
      });
      const started = Date.now();
      const reply = await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`);
      expect(reply.status).toBe(504);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(refusals).toEqual([]);
    });

    it('answers 502 when the upstream goes idle past idleTimeoutMs', async () => {
      // A TCP server that accepts and never answers.
      const accepted: Socket[] = [];
      const silent: Server = createNetServer((s) => accepted.push(s.resume()));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const silentPort = (silent.address() as AddressInfo).port;
      try {
        const p = await start({
          idleTimeoutMs: 150,
          dial: () => new Socket().connect(silentPort, '127.0.0.1'),
        });
        const reply = await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`);
        expect(reply.status).toBe(502);
      } finally {
        for (const s of accepted) s.destroy();
        await new Promise<void>((r) => silent.close(() => r()));
      }
    });

    it('drops connections beyond maxConnections', async () => {
      const p = await start({ maxConnections: 1 });
      const held = await connectVia(p, `${PUBLIC_TEST_HOST}:443`);
      expect(held.status).toBe(200);
      await expect(viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`)).rejects.toThrow();
      held.socket.destroy();
      // Allowed neighbour: once the slot is free a request passes.
      await new Promise((r) => setTimeout(r, 50));
      expect((await viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`)).status).toBe(200);
    });

    it('close() lets an in-flight request finish, then stops listening', async () => {
      const p = await start();
      const inFlight = viaProxy(p, `http://${PUBLIC_TEST_HOST}/slow?ms=200`);
      await new Promise((r) => setTimeout(r, 50));
      expect(origin.requests.map((r) => r.path)).toEqual(['/slow?ms=200']);
      await p.close();
      expect(await inFlight).toMatchObject({ status: 200, body: 'slow answer' });
      await expect(viaProxy(p, `http://${PUBLIC_TEST_HOST}/hello`)).rejects.toThrow();
    });

    it('close() destroys a tunnel still open after drainTimeoutMs', async () => {
      const p = await start({ drainTimeoutMs: 100 });
      const { status, socket } = await connectVia(p, `${PUBLIC_TEST_HOST}:443`);
      expect(status).toBe(200);
      const ended = new Promise<void>((r) => socket.once('close', () => r()));
      const started = Date.now();
      await p.close();
      await ended;
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });
});
