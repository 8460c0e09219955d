// A distributed service run as a child process (node services/<name>/dist/main.js), so a suite
// can SIGKILL it mid-work and start it again. Uses the compiled packages: run `pnpm build` first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Where the services' compiled entry points are. */
const SERVICES_DIR = resolve(__dirname, '../../../services');

/** One incarnation after another of a service process, on the same environment (and so ports). */
export interface ServiceProcess {
  readonly name: string;
  /** The running incarnation's pid; undefined while none runs. */
  readonly pid: number | undefined;
  /** Incarnations started so far. */
  readonly starts: number;
  /** Starts a new incarnation and resolves once `ready()` resolves true (bounded). */
  start(): Promise<void>;
  /** Sends SIGKILL to the running incarnation and resolves once it has exited. */
  kill(): Promise<void>;
  /** Sends SIGTERM (the service closes in order) and resolves once it has exited (bounded). */
  stop(timeoutMs?: number): Promise<void>;
  /** The last output of the current or last incarnation (stdout and stderr), for failure messages. */
  output(): string;
}

/** How to run one service. */
export interface ServiceProcessOptions {
  /** Directory name under services/, e.g. `audit-log`. */
  readonly name: string;
  /** Its configuration (added to this process's environment). */
  readonly env: Readonly<Record<string, string>>;
  /** Resolves true once the incarnation serves; polled until startTimeoutMs. */
  readonly ready: () => Promise<boolean>;
  /** Default 30 s. */
  readonly startTimeoutMs?: number;
}

const OUTPUT_KEPT = 8000;

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done(true);
    });
  });
}

/** A restartable service process; nothing runs until `start()`. */
export function serviceProcess(options: ServiceProcessOptions): ServiceProcess {
  const main = resolve(SERVICES_DIR, options.name, 'dist', 'main.js');
  let child: ChildProcess | undefined;
  let starts = 0;
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-OUTPUT_KEPT);
  };

  const signal = async (sig: NodeJS.Signals, timeoutMs: number): Promise<void> => {
    const c = child;
    if (c === undefined || exited(c)) return;
    c.kill(sig);
    if (!(await waitForExit(c, timeoutMs))) {
      c.kill('SIGKILL');
      await waitForExit(c, 5000);
      throw new Error(`${options.name} did not exit within ${timeoutMs} ms of ${sig}:\n${out}`);
    }
  };

  return {
    name: options.name,
    get pid() {
      return child !== undefined && !exited(child) ? child.pid : undefined;
    },
    get starts() {
      return starts;
    },
    output: () => out,
    start: async () => {
      if (child !== undefined && !exited(child))
        throw new Error(`${options.name} is already running`);
      if (!existsSync(main)) throw new Error(`${main} is missing: run pnpm build first`);
      out = '';
      starts++;
      const c = spawn(process.execPath, [main], {
        env: { ...process.env, ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = c;
      c.stdout?.on('data', keep);
      c.stderr?.on('data', keep);
      const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
      for (;;) {
        if (exited(c))
          throw new Error(
            `${options.name} exited (${String(c.exitCode ?? c.signalCode)}):\n${out}`,
          );
        if (await options.ready().catch(() => false)) return;
        if (Date.now() > deadline) {
          c.kill('SIGKILL');
          throw new Error(`${options.name} was not ready in time:\n${out}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kill: () => signal('SIGKILL', 10_000),
    stop: (timeoutMs = 20_000) => signal('SIGTERM', timeoutMs),
  };
}
