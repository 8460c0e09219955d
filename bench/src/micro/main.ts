import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PolicyEngine } from '@hcp/policy';
import {
  ALICE,
  FIXTURE_VERSIONS,
  NOW,
  activeSession,
  call,
  contextFor,
  id,
  path,
  handle,
} from '@hcp/policy/testing';
import { LocalRuntime } from './local-runtime';
import { measure, summarize, type Summary } from './stats';

/**
 * `pnpm bench:micro`: the local in-memory microbenchmark. Times the four
 * operations of the reference paper's local runtime on our engine and prints
 * them beside the paper's means. See docs/benchmarks.md for how to read it.
 */

/** Mean latencies the reference paper reports for its local in-memory runtime (ms). */
const PAPER_MS: Record<string, number | undefined> = {
  explain: 0.021,
  task_start: 0.101,
  peek: undefined,
  pipe_write: 0.118,
};

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    iterations: { type: 'string', default: '100000' },
    warmup: { type: 'string', default: '20000' },
    'check-goal': { type: 'boolean', default: false },
  },
});
const iterations = Number(values.iterations);
const warmup = Number(values.warmup);
if (!Number.isInteger(iterations) || iterations < 100 || !Number.isInteger(warmup) || warmup < 0) {
  console.error('--iterations must be an integer >= 100 and --warmup an integer >= 0');
  process.exit(2);
}

const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
const contexts = new Map(['alice', 'bob'].map((p) => [p, contextFor(p)]));
const runtime = new LocalRuntime(engine, (p) => contexts.get(p) ?? contextFor(p));

const env = { principal: ALICE, session: activeSession('alice'), now: NOW };
const readCall = call('fs/read_file', path('/data/app/reports/q3.txt'), {
  path: '/data/app/reports/q3.txt',
});
const readReq = { ...env, call: readCall };
const output = 'Q3 revenue: 4.2M\napi_key=sk-live-0000000000\n'.repeat(8);
const mailCall = call('mail/send', id('ops@example.com'), {
  to: 'ops@example.com',
  body: { $handle: 'source' },
});

// Sanity: every measured path must take the allow branch, or we would time denials.
const seed = runtime.startTask(readReq, output);
if (seed.decision.outcome !== 'allow' || seed.handleId === undefined)
  throw new Error(`setup denied: ${seed.decision.explanation}`);
const source = seed.handleId;
if (runtime.peek(env, source).preview === undefined) throw new Error('setup: peek denied');
if (runtime.pipeWrite(env, source, mailCall).decision.outcome !== 'allow')
  throw new Error('setup: pipe denied');
if (runtime.explain(readReq).decision.outcome !== 'allow') throw new Error('setup: explain denied');
void handle;

const results: Record<string, Summary> = {};
const bound = () => {
  // Keep memory flat: task start and pipe write create handles on every call.
  if (runtime.handleCount > 200_000) {
    runtime.clearHandles();
    const again = runtime.startTask(readReq, output);
    if (again.handleId === undefined) throw new Error('reseed denied');
    return again.handleId;
  }
  return undefined;
};

results['floor'] = summarize(measure(() => undefined, iterations, warmup));
results['explain'] = summarize(measure(() => runtime.explain(readReq), iterations, warmup));
results['task_start'] = summarize(
  measure(() => runtime.startTask(readReq, output), iterations, warmup),
);
let src = bound() ?? source;
results['peek'] = summarize(measure(() => runtime.peek(env, src), iterations, warmup));
src = bound() ?? src;
results['pipe_write'] = summarize(
  measure(() => runtime.pipeWrite(env, src, mailCall), iterations, warmup),
);

const rows = Object.entries(results).map(([op, s]) => {
  const paper = PAPER_MS[op];
  return {
    op,
    ...s,
    paperMeanMs: paper ?? null,
    speedupAtP50: paper !== undefined ? paper / s.p50Ms : null,
    goalMet: paper !== undefined ? paper / s.p50Ms >= 5 : null,
  };
});

const us = (ms: number) => (ms * 1000).toFixed(2).padStart(8);
console.log(
  `HCP local microbenchmark — node ${process.version}, ${iterations} iterations after ${warmup} warm-up`,
);
console.log('operation     mean µs   p50 µs   p99 µs   paper µs   paper/p50  goal(>=5x)');
for (const r of rows) {
  const paper = r.paperMeanMs === null ? '       —' : us(r.paperMeanMs);
  const ratio = r.speedupAtP50 === null ? '        —' : `${r.speedupAtP50.toFixed(1).padStart(8)}x`;
  const goal = r.goalMet === null ? '—' : r.goalMet ? 'met' : 'MISSED';
  console.log(
    `${r.op.padEnd(12)}${us(r.meanMs)} ${us(r.p50Ms)} ${us(r.p99Ms)}   ${paper}   ${ratio}  ${goal}`,
  );
}
console.log('floor = an empty function timed the same way (the cost of the timer itself).');

if (values.json !== undefined) {
  const doc = {
    benchmark: 'micro',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    iterations,
    warmup,
    unit: 'ms',
    operations: rows,
  };
  writeFileSync(values.json, JSON.stringify(doc, null, 2) + '\n');
  console.log(`wrote ${values.json}`);
}
// Timing gates are opt-in: a shared, noisy machine must not turn a slow minute into a red build.
if (values['check-goal'] && rows.some((r) => r.goalMet === false)) process.exitCode = 1;
