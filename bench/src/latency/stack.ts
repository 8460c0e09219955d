import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '@hcp/platform';
import type { GroupRoot } from './proc-cpu';

/** Which stack the run measures. */
export type StackMode = 'distributed' | 'embedded';

/** The running stack: its addresses and the demo world the edge serves. */
export interface RunningStack {
  readonly mode: StackMode;
  readonly description: string;
  readonly grantStore: string;
  readonly pdp: string;
  readonly edgeUrl: string;
  /** alice's demo token: she may read the sandbox's public/ folder. */
  readonly edgeToken: string;
  readonly sandboxRoot: string;
  /** A small file alice may read (public/hello.txt, 28 bytes). */
  readonly edgeFile: string;
  /** The stack's NATS (distributed) or one started for the floor only (embedded); null if none. */
  readonly natsUrl: string | null;
  readonly stateDir: string;
  /**
   * The stack's processes for CPU accounting (proc-cpu.ts), as group roots: distributed =
   * run.sh's process tree (one group per service's main.js; the edge's upstream MCP server
   * apart), the PostgreSQL postmaster with its backends, nats-server; embedded = the one process
   * (and NATS when started for the floor). Read when called: pids are the current ones.
   */
  cpuRoots(): GroupRoot[];
  /** Stops everything started here and waits for it (bounded), so CPU profiles get written. */
  stop(): Promise<void>;
}

/** How to start it. */
export interface StackOptions {
  readonly mode: StackMode;
  readonly root: string;
  /** Extra environment for every stack process (e.g. NODE_OPTIONS=--cpu-prof for a profile run). */
  readonly env?: Readonly<Record<string, string>>;
  readonly keepState?: boolean;
  readonly startTimeoutMs?: number;
}

/** Finds nats-server on PATH or in GOPATH/bin (deploy/local/servers.sh installs it). */
export function findBinary(name: string): string | null {
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim() !== '') return which.stdout.trim();
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  if (gopath.status === 0) {
    const p = join(gopath.stdout.trim(), 'bin', name);
    if (existsSync(p)) return p;
  }
  return null;
}

function waitForOutput(child: ChildProcess, marker: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    // Kept (bounded) so a stack that fails to start says why.
    child.stderr?.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    const timer = setTimeout(
      () => reject(new Error(`stack did not start in ${timeoutMs} ms:\n${out}\n${err}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stack exited (${String(code)}) before it was ready:\n${out}\n${err}`));
    });
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The CPU group of a process under the stack's root: each service's own main.js by name, the
 * filesystem MCP server the edge starts as the upstream; anything else inherits its parent's.
 */
export function classifyStackProcess(cmdline: string): string | undefined {
  if (/server-filesystem/.test(cmdline)) return 'upstream MCP server';
  const m = /services\/([a-z0-9-]+)\/dist\/main\.js/.exec(cmdline);
  return m?.[1];
}

function envFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * Starts the stack in other processes on free loopback ports: distributed = deploy/local/run.sh
 * (PostgreSQL, NATS, one process per service, the edge with the demo world), embedded =
 * apps/embedded (every service in one process, PGlite, in-process bus, same demo world).
 */
export async function startStack(o: StackOptions): Promise<RunningStack> {
  const stateDir = mkdtempSync(join(tmpdir(), `hcp-bench-${o.mode}-`));
  const [gs, pdp, pdpHttp, vault, audit, edge] = await Promise.all(
    Array.from({ length: 6 }, () => findFreePort()),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...o.env,
    // Benchmarks measure the call path, not log formatting: warnings and errors only.
    HCP_LOG_LEVEL: 'warn',
    HCP_GRANT_STORE_PORT: String(gs),
    HCP_PDP_GRPC_PORT: String(pdp),
    HCP_PDP_HTTP_PORT: String(pdpHttp),
    HCP_VAULT_PORT: String(vault),
    HCP_AUDIT_HTTP_PORT: String(audit),
    HCP_EDGE_PORT: String(edge),
  };
  const timeout = o.startTimeoutMs ?? 180_000;
  const cleanupOnFailure = (err: unknown): never => {
    // run.sh / the embedded app have stopped what they started; only the folder is left.
    if (o.keepState !== true) rmSync(stateDir, { recursive: true, force: true });
    throw err;
  };
  let child: ChildProcess;
  let nats: ChildProcess | undefined;
  let natsUrl: string | null = null;
  let description: string;
  if (o.mode === 'distributed') {
    child = spawn('bash', [join(o.root, 'deploy/local/run.sh'), stateDir], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    await waitForOutput(child, '\nlogs ', timeout).catch(cleanupOnFailure);
    child.stderr?.removeAllListeners('data').resume();
    natsUrl = envFile(join(stateDir, 'env'))['HCP_NATS_URL'] ?? null;
    description =
      'distributed: deploy/local/run.sh — PostgreSQL and NATS, one process per service (grant-store, policy-decision, handle-vault, audit-log, edge)';
  } else {
    child = spawn(process.execPath, [join(o.root, 'apps/embedded/dist/main.js')], {
      env: {
        ...env,
        HCP_STATE_DIR: stateDir,
        HCP_SANDBOX_DIR: join(stateDir, 'sandbox'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitForOutput(child, 'serving; Ctrl-C to stop', timeout).catch(cleanupOnFailure);
    child.stderr?.removeAllListeners('data').resume();
    // No NATS in the embedded stack; one of our own, only for the NATS floor, when installed.
    const bin = findBinary('nats-server');
    if (bin !== null) {
      const port = await findFreePort();
      nats = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
      natsUrl = `nats://127.0.0.1:${port}`;
      await new Promise((r) => setTimeout(r, 300));
    }
    description =
      'embedded: apps/embedded — every service in one process, PGlite, in-process bus (NATS only for the floor)';
  }
  const sandboxRoot = realpathSync(join(stateDir, 'sandbox'));
  const token = readFileSync(join(stateDir, 'alice.token'), 'utf8').trim();
  const stop = async () => {
    if (o.mode === 'distributed' && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    } else child.kill('SIGTERM');
    await waitForExit(child, 30_000);
    if (nats !== undefined) {
      nats.kill('SIGTERM');
      await waitForExit(nats, 5_000);
    }
    if (o.keepState !== true) rmSync(stateDir, { recursive: true, force: true });
  };
  const cpuRoots = (): GroupRoot[] => {
    const roots: GroupRoot[] = [];
    if (o.mode === 'distributed') {
      if (child.pid !== undefined)
        roots.push({ group: 'run.sh', pid: child.pid, classify: classifyStackProcess });
      // servers.sh writes the postmaster's and nats-server's pids (both outlive run.sh's tree).
      const e = envFile(join(stateDir, 'env'));
      const pg = Number(e['PG_PID']);
      const natsPid = Number(e['NATS_PID']);
      if (Number.isInteger(pg) && pg > 0) roots.push({ group: 'postgres', pid: pg });
      if (Number.isInteger(natsPid) && natsPid > 0)
        roots.push({ group: 'nats-server', pid: natsPid });
    } else {
      if (child.pid !== undefined)
        roots.push({ group: 'embedded', pid: child.pid, classify: classifyStackProcess });
      if (nats?.pid !== undefined) roots.push({ group: 'nats-server (floor only)', pid: nats.pid });
    }
    return roots;
  };
  return {
    mode: o.mode,
    description,
    cpuRoots,
    grantStore: `127.0.0.1:${gs}`,
    pdp: `127.0.0.1:${pdp}`,
    edgeUrl: `http://127.0.0.1:${edge}/mcp`,
    edgeToken: token,
    sandboxRoot,
    edgeFile: join(sandboxRoot, 'public', 'hello.txt'),
    natsUrl,
    stateDir,
    stop,
  };
}
