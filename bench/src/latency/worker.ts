import { PolicyEngine } from '@hcp/policy';
import {
  ALICE,
  FIXTURE_VERSIONS,
  NOW,
  activeSession,
  call,
  contextFor,
  path,
} from '@hcp/policy/testing';
import { encode, newHistogram, record } from './hdr';
import { runOpenLoop } from './open-loop';
import type { Job, JobReply, JobResult, WorkerInit } from './protocol';
import { quiesce } from './quiesce';
import { runSeries } from './series';
import {
  allows,
  benchDecideRequest,
  decideOnce,
  grantBench,
  openClients,
  putBenchCapability,
  revokeGrant,
  HIT_PRINCIPAL,
  type Clients,
} from './targets';

/**
 * A load-generator / client process (forked by main.ts, talks over IPC). Keeping the client
 * out of the orchestrator's process, and out of every server's, means its CPU and event loop
 * are its own: what it measures is the server path, not a shared event loop.
 */
let clients: Clients | undefined;
let runId = 'run';

const hrNow = (): number => Number(process.hrtime.bigint());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function handle(job: Job): Promise<JobResult> {
  if (job.kind === 'local') return local(job.iterations, job.warmup);
  if (clients === undefined) throw new Error('worker not initialised');
  const c = clients;
  switch (job.kind) {
    case 'prepare': {
      // The hit principal's grant; the capability first (grant-store refuses unknown ones).
      await putBenchCapability(c.grantStore);
      await grantBench(c.grantStore, HIT_PRINCIPAL);
      const res = await decideOnce(c.pdp, benchDecideRequest(HIT_PRINCIPAL));
      if (!allows(res)) throw new Error(`setup: ${res.decision?.explanation ?? 'no decision'}`);
      return { histograms: {}, counts: {}, errorSamples: [] };
    }
    case 'series': {
      const ops: Record<string, () => Promise<void>> = {};
      for (const name of job.ops) ops[name] = await c.op(name);
      const r = await runSeries(ops, {
        ...job,
        ...(job.quiesce ? { beforeBlock: () => quiesce(0.2, job.quiesceTimeoutMs ?? 5_000) } : {}),
      });
      const histograms: Record<string, string> = {};
      for (const [k, h] of Object.entries(r.histograms)) histograms[k] = encode(h);
      const counts: Record<string, number> = {};
      for (const [k, n] of Object.entries(r.errors)) counts[`${k}.errors`] = n;
      return { histograms, counts, errorSamples: r.errorSamples, truncated: r.truncated };
    }
    case 'load': {
      const op = await c.op(job.op);
      const r = await runOpenLoop(op, job);
      return {
        histograms: {
          fromSchedule: encode(r.fromSchedule),
          fromSend: encode(r.fromSend),
          sendLag: encode(r.sendLag),
        },
        counts: {
          scheduled: r.scheduled,
          sent: r.sent,
          ok: r.ok,
          errors: r.errors,
          dropped: r.dropped,
          timedOut: r.timedOut,
          achievedRps: r.achievedRps,
        },
        errorSamples: r.errorSamples,
      };
    }
    case 'miss':
      return miss(c, job.trials, job.settleMs, job.maxMs);
    case 'revoke':
      return revoke(c, job.trials, job.maxMs);
    case 'exit':
      return { histograms: {}, counts: {}, errorSamples: [] };
  }
}

/** libs/policy in this process: the engine's decide on the fixture world (the micro's decide). */
function local(iterations: number, warmup: number): JobResult {
  const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
  const ctx = contextFor('alice');
  const file = '/data/app/reports/q3.txt';
  const req = {
    principal: ALICE,
    session: activeSession('alice'),
    now: NOW,
    call: call('fs/read_file', path(file), { path: file }),
  };
  if (engine.decide(req, ctx).outcome !== 'allow') throw new Error('local decide denied');
  let sink = 0;
  for (let i = 0; i < warmup; i++) sink += engine.decide(req, ctx).outcome.length;
  const h = newHistogram();
  for (let i = 0; i < iterations; i++) {
    const t0 = hrNow();
    sink += engine.decide(req, ctx).outcome.length;
    record(h, hrNow() - t0);
  }
  return { histograms: { local_decide: encode(h) }, counts: { sink }, errorSamples: [] };
}

/**
 * Cache miss: before each timed Decide, grant-store writes a new grant for the principal (a
 * PostgreSQL transaction; the grants-changed event invalidates the PDP's entry) and revokes the
 * previous one. The timed Decide asks about the new grant's path, so an allow proves the PDP
 * refetched (a cached pre-write entry would deny); a deny means the event had not arrived yet
 * within settleMs, and the trial is counted as `notInvalidated`, not timed.
 */
async function miss(
  c: Clients,
  trials: number,
  settleMs: number,
  maxMs: number,
): Promise<JobResult> {
  const h = newHistogram();
  const principal = `bench-miss-${runId}`;
  let prev = await grantBench(c.grantStore, principal, '/data/app/miss-0');
  await decideOnce(c.pdp, benchDecideRequest(principal, '/data/app/miss-0/a.txt'));
  let notInvalidated = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const deadline = Date.now() + maxMs;
  let done = 0;
  for (let i = 1; i <= trials && Date.now() < deadline; i++) {
    const g = await grantBench(c.grantStore, principal, `/data/app/miss-${i}`);
    await revokeGrant(c.grantStore, prev);
    prev = g;
    await sleep(settleMs);
    const req = benchDecideRequest(principal, `/data/app/miss-${i}/a.txt`);
    const t0 = hrNow();
    try {
      const res = await decideOnce(c.pdp, req);
      const t = hrNow() - t0;
      if (allows(res)) record(h, t);
      else notInvalidated++;
    } catch (err: unknown) {
      errors++;
      if (errorSamples.length < 5) errorSamples.push(String(err));
    }
    done++;
  }
  return {
    histograms: { decide_miss: encode(h) },
    counts: { trials: done, notInvalidated, errors },
    errorSamples,
  };
}

/** Revoke-to-deny: RevokeGrant returns, then Decide in a loop until it denies (bounded per trial). */
async function revoke(c: Clients, trials: number, maxMs: number): Promise<JobResult> {
  const h = newHistogram();
  const polls = newHistogram();
  const deadline = Date.now() + maxMs;
  let done = 0;
  let neverDenied = 0;
  for (let i = 0; i < trials && Date.now() < deadline; i++) {
    const p = `bench-revoke-${runId}-${i}`;
    const req = benchDecideRequest(p);
    const g = await grantBench(c.grantStore, p);
    if (!allows(await decideOnce(c.pdp, req))) throw new Error('setup: revoke target denied');
    await revokeGrant(c.grantStore, g);
    const t0 = hrNow();
    let n = 0;
    let denied = false;
    while (hrNow() - t0 < 10e9) {
      n++;
      if (!allows(await decideOnce(c.pdp, req))) {
        denied = true;
        break;
      }
    }
    if (denied) {
      record(h, hrNow() - t0);
      record(polls, n);
    } else neverDenied++;
    done++;
  }
  return {
    histograms: { revoke_to_deny: encode(h), revoke_polls: encode(polls) },
    counts: { trials: done, neverDenied },
    errorSamples: [],
  };
}

process.on('message', (msg: WorkerInit | Job) => {
  if (msg.kind === 'init') {
    clients = openClients(msg.targets);
    runId = msg.runId;
    process.send?.({ ok: true, result: { histograms: {}, counts: {}, errorSamples: [] } });
    return;
  }
  if (msg.kind === 'exit') {
    void (clients?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    return;
  }
  handle(msg).then(
    (result) => process.send?.({ ok: true, result } satisfies JobReply),
    (err: unknown) =>
      process.send?.({
        ok: false,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      } satisfies JobReply),
  );
});
process.on('disconnect', () => process.exit(0));
