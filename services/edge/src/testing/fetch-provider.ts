import { accessSync, constants } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Resolver } from '@hcp/canonical';
import type { ProviderConfig } from '../providers/provider-config';

/** The mcp-server-fetch version scripts/install-fetch-provider.sh pins; keep the two equal. */
export const FETCH_PROVIDER_VERSION = '2026.10.24';

/**
 * Where the real mcp-server-fetch executable is: `HCP_FETCH_PROVIDER_BIN`,
 * else `<venv>/bin/mcp-server-fetch` with the venv of
 * scripts/install-fetch-provider.sh (`HCP_FETCH_VENV`, default
 * `~/.cache/hcp/fetch-venv`).
 */
export function fetchProviderBin(): string {
  const explicit = process.env.HCP_FETCH_PROVIDER_BIN;
  if (explicit !== undefined && explicit !== '') return explicit;
  const venv = process.env.HCP_FETCH_VENV || join(homedir(), '.cache', 'hcp', 'fetch-venv');
  return join(venv, 'bin', 'mcp-server-fetch');
}

/** True when the fetch server is installed, so its end-to-end tests can run. */
export function fetchProviderAvailable(): boolean {
  try {
    accessSync(fetchProviderBin(), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * For a test suite that needs the fetch server: true when it is installed. Missing, it fails the
 * run under CI=true (the suite cannot prove anything without it) and elsewhere warns loudly that
 * `what` is skipped, with the command that installs it.
 */
export function fetchProviderRequired(what: string): boolean {
  if (fetchProviderAvailable()) return true;
  const why =
    `mcp-server-fetch not found at ${fetchProviderBin()}; ` +
    'install it with scripts/install-fetch-provider.sh (or set HCP_FETCH_PROVIDER_BIN)';
  if (process.env.CI === 'true') throw new Error(why);
  console.warn(`\n!!! SKIPPING ${what}: ${why}\n`);
  return false;
}

/** How to run the fetch provider. */
export interface FetchProviderOptions {
  /** Port of the egress proxy on 127.0.0.1 the server must send every request through. */
  readonly proxyPort: number;
  /** Default `fetch`. */
  readonly providerId?: string;
  /**
   * Turns off the server's own private-address guard (`--allow-private-ips`),
   * leaving the egress proxy as the only check. Needed when the provider has
   * `allowCidrs` (the server's guard would refuse those ranges), and in tests
   * that prove the proxy alone refuses. Default false: both guards run.
   */
  readonly upstreamGuardOff?: boolean;
  /** Sent as `--user-agent`; default the server's own. */
  readonly userAgent?: string;
  /** Copied into `resources.allowCidrs`. */
  readonly allowCidrs?: readonly string[];
}

/**
 * A stdio ProviderConfig for the real mcp-server-fetch behind the egress
 * proxy: robots.txt off (the edge's grants decide what may be fetched, and a
 * robots.txt fetch would be one more request per call) and `--proxy-url` so
 * every request, redirect hops included, passes the proxy.
 */
export function fetchProviderConfig(options: FetchProviderOptions): ProviderConfig {
  const args = ['--ignore-robots-txt', '--proxy-url', `http://127.0.0.1:${options.proxyPort}`];
  if (options.upstreamGuardOff === true) args.push('--allow-private-ips');
  if (options.userAgent !== undefined) args.push('--user-agent', options.userAgent);
  return {
    id: options.providerId ?? 'fetch',
    transport: { kind: 'stdio', command: fetchProviderBin(), args },
    ...(options.allowCidrs === undefined
      ? {}
      : { resources: { allowCidrs: [...options.allowCidrs] } }),
  };
}

/** A name no real DNS answers, which the test resolver maps to a public address. */
export const PUBLIC_TEST_HOST = 'public.example.test';

/** The public address PUBLIC_TEST_HOST resolves to in tests (TEST-NET would be refused, so a real public one). */
export const PUBLIC_TEST_IP = '93.184.216.34';

/**
 * A resolver for tests: PUBLIC_TEST_HOST -> PUBLIC_TEST_IP, `private.example.test`
 * -> 10.0.0.5, anything else fails like NXDOMAIN. No network.
 */
export const testResolver: Resolver = (host) => {
  if (host === PUBLIC_TEST_HOST) return Promise.resolve([PUBLIC_TEST_IP]);
  if (host === 'private.example.test') return Promise.resolve(['10.0.0.5']);
  return Promise.reject(new Error(`getaddrinfo ENOTFOUND ${host}`));
};

/** One request a RecordingOrigin received. */
export interface OriginRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string;
}

/**
 * A loopback HTTP server standing in for "the internet" in egress tests. It
 * records every request, so a test can prove a refused URL never arrived.
 * Routes: `/hello` (an HTML page), `/secret`, `/redirect?to=<url>` (302),
 * `/slow?ms=<n>` (answers after n ms, at most 10 s),
 * anything else 404.
 */
export interface RecordingOrigin {
  readonly port: number;
  readonly requests: readonly OriginRequest[];
  /** Maps any vetted address to this origin: the `dial` of the egress proxy in tests. */
  dial(ip: string, port: number): Socket;
  /** Every address the proxy dialled, in order. */
  readonly dialled: readonly string[];
  close(): Promise<void>;
}

/** Text of the `/hello` page; what a successful fetch returns. */
export const ORIGIN_HELLO_TEXT = 'Hello from the public origin';

/** Text of `/secret`; must never appear in a refused fetch's output. */
export const ORIGIN_SECRET_TEXT = 'internal secret 7f3a';

/** Starts a RecordingOrigin on 127.0.0.1. */
export async function startRecordingOrigin(): Promise<RecordingOrigin> {
  const requests: OriginRequest[] = [];
  const dialled: string[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://origin.invalid');
    requests.push({ method: req.method ?? '', path: req.url ?? '', host: req.headers.host ?? '' });
    if (url.pathname === '/hello') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        `<html><head><title>hello</title></head><body><article><h1>Greeting</h1>` +
          `<p>${ORIGIN_HELLO_TEXT}.</p></article></body></html>`,
      );
    } else if (url.pathname === '/secret') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(ORIGIN_SECRET_TEXT);
    } else if (url.pathname === '/slow') {
      const ms = Math.min(Number(url.searchParams.get('ms') ?? 100) || 0, 10_000);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('slow answer');
      }, ms);
    } else if (url.pathname === '/redirect') {
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/hello', 'content-length': 0 });
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    requests,
    dialled,
    dial: (ip) => {
      dialled.push(ip);
      return connect({ host: '127.0.0.1', port });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
