import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, encode, merge, newHistogram, ratioTo, record, summarizeHistogram } from './hdr';
import { parseGhzReport } from './ghz';
import { runOpenLoop } from './open-loop';
import { componentOf, summarizeProfile } from './profile';
import { runSeries } from './series';
import { renderLatencyPlot } from './svg';
import { assertLoopback, benchDecideRequest, BENCH_CAPABILITY } from './targets';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hdr', () => {
  it('summarises nanosecond samples in milliseconds and survives encode/merge', () => {
    const a = newHistogram();
    for (let i = 1; i <= 1000; i++) record(a, i * 1000); // 1 µs .. 1 ms
    const s = summarizeHistogram(a);
    expect(s.count).toBe(1000);
    expect(s.p50Ms).toBeCloseTo(0.5, 2);
    expect(s.p99Ms).toBeCloseTo(0.99, 2);
    expect(s.maxMs).toBeCloseTo(1, 2);
    const both = merge([decode(encode(a)), decode(encode(a))]);
    expect(both.totalCount).toBe(2000);
    expect(summarizeHistogram(both).p50Ms).toBeCloseTo(0.5, 2);
  });

  it('reports an empty histogram as NaN rather than zero', () => {
    expect(summarizeHistogram(newHistogram()).p50Ms).toBeNaN();
  });

  it('divides each percentile by the floor', () => {
    const f = { count: 1, meanMs: 1, p50Ms: 1, p95Ms: 2, p99Ms: 4, p999Ms: 5, maxMs: 8, minMs: 1 };
    expect(ratioTo({ ...f, p50Ms: 1.5, p99Ms: 2 }, f)).toEqual({
      p50: 1.5,
      p95: 1,
      p99: 0.5,
      max: 1,
    });
  });
});

describe('runOpenLoop', () => {
  it('sends on schedule, without waiting for earlier calls, and counts successes', async () => {
    let inFlight = 0;
    let peak = 0;
    const op = async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep(30); // slower than the 5 ms arrival interval: open loop must overlap calls
      inFlight--;
    };
    const r = await runOpenLoop(op, {
      rate: 200,
      durationMs: 300,
      maxInFlight: 100,
      maxRequests: 1000,
      graceMs: 1000,
    });
    expect(r.scheduled).toBe(60);
    expect(r.ok).toBe(60);
    expect(r.errors).toBe(0);
    expect(peak).toBeGreaterThan(3);
    expect(summarizeHistogram(r.fromSend).p50Ms).toBeGreaterThanOrEqual(29);
  });

  it('counts failures, drops past maxInFlight, and the request bound', async () => {
    let n = 0;
    const op = () => (n++ % 2 === 0 ? Promise.resolve() : Promise.reject(new Error('boom')));
    const r = await runOpenLoop(op, {
      rate: 1000,
      durationMs: 200,
      maxInFlight: 10,
      maxRequests: 50,
      graceMs: 500,
    });
    expect(r.scheduled).toBe(50);
    expect(r.ok).toBe(25);
    expect(r.errors).toBe(25);
    expect(r.errorSamples[0]).toBe('boom');

    const stuck = await runOpenLoop(() => new Promise<void>(() => undefined), {
      rate: 100,
      durationMs: 100,
      maxInFlight: 2,
      maxRequests: 100,
      graceMs: 50,
    });
    expect(stuck.ok).toBe(0);
    expect(stuck.dropped).toBe(stuck.scheduled - 2);
    expect(stuck.timedOut).toBe(2);
    expect(stuck.errors).toBe(stuck.scheduled);
  });

  it('refuses a non-positive rate', () => {
    expect(() =>
      runOpenLoop(() => Promise.resolve(), {
        rate: 0,
        durationMs: 1,
        maxInFlight: 1,
        maxRequests: 1,
        graceMs: 1,
      }),
    ).toThrow(RangeError);
  });
});

describe('runSeries', () => {
  it('times every operation in interleaved blocks and keeps errors out of the histograms', async () => {
    const order: string[] = [];
    let blocks = 0;
    const r = await runSeries(
      {
        a: () => {
          order.push('a');
          return Promise.resolve();
        },
        b: () => {
          order.push('b');
          return Promise.reject(new Error('nope'));
        },
      },
      {
        iterations: 4,
        warmup: 1,
        block: 2,
        maxMs: 10_000,
        beforeBlock: () => Promise.resolve(blocks++),
      },
    );
    expect(order.join('')).toBe('abaabbaabb');
    expect(blocks).toBe(4);
    expect(r.histograms['a']!.totalCount).toBe(4);
    expect(r.histograms['b']!.totalCount).toBe(0);
    expect(r.errors['b']).toBe(5);
    expect(r.truncated).toBe(false);
  });
});

describe('assertLoopback', () => {
  it.each([
    '127.0.0.1:50051',
    '127.8.9.10:1',
    'localhost:80',
    'http://127.0.0.1:8090/mcp',
    'nats://127.0.0.1:4222',
    '[::1]:50051',
    'http://[::1]:1/x',
  ])('accepts %s', (a) => expect(() => assertLoopback(a)).not.toThrow());
  it.each([
    '10.0.0.1:50051',
    '192.168.1.1:1',
    'example.com:443',
    'http://8.8.8.8/mcp',
    '128.0.0.1:1',
  ])('refuses %s', (a) => expect(() => assertLoopback(a)).toThrow(/not a loopback address/));
});

describe('benchDecideRequest', () => {
  it('asks about the bench capability with its pinned digest', () => {
    const req = benchDecideRequest('p', '/data/app/x.txt');
    expect(req.principal?.id).toBe('p');
    expect(req.call?.capabilityId).toBe(BENCH_CAPABILITY.id);
    expect(req.call?.observedDefinitionDigest).toBe(BENCH_CAPABILITY.definitionDigest);
  });
});

describe('parseGhzReport', () => {
  it('reads ghz JSON (nanoseconds) and counts skipped requests in the rate', () => {
    const s = parseGhzReport(
      JSON.stringify({
        count: 1500,
        total: 2e9,
        rps: 750,
        average: 400_000,
        slowest: 9_000_000,
        latencyDistribution: [
          { percentage: 50, latency: 300_000 },
          { percentage: 95, latency: 600_000 },
          { percentage: 99, latency: 900_000 },
        ],
        statusCodeDistribution: { OK: 1499, Unavailable: 1 },
        errorDistribution: { 'rpc error: code = Unavailable': 1 },
      }),
      500,
    );
    expect(s).toMatchObject({
      count: 1500,
      rps: 1000,
      p50Ms: 0.3,
      p95Ms: 0.6,
      p99Ms: 0.9,
      maxMs: 9,
      errors: 1,
    });
  });
});

describe('profile summaries', () => {
  it('names components from script URLs', () => {
    expect(
      componentOf(
        'x',
        'file:///w/node_modules/.pnpm/@grpc+grpc-js@1.14.7/node_modules/@grpc/grpc-js/build/src/server.js',
      ),
    ).toBe('grpc-js');
    expect(componentOf('x', 'file:///w/services/policy-decision/dist/decision.service.js')).toBe(
      'hcp policy-decision',
    );
    expect(componentOf('x', 'node:internal/http2/core')).toBe('node http2');
    expect(componentOf('(garbage collector)', '')).toBe('garbage collector');
    expect(componentOf('(idle)', '')).toBe('idle');
  });

  it('splits self time by component inside a time window, without idle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hcp-prof-spec-'));
    try {
      const file = join(dir, 'policy-decision-main-42.cpuprofile');
      const engine = 'file:///w/libs/policy/dist/engine.js';
      writeFileSync(
        file,
        JSON.stringify({
          nodes: [
            {
              id: 1,
              callFrame: { functionName: '(root)', url: '', lineNumber: -1 },
              children: [2, 4],
            },
            {
              id: 2,
              callFrame: { functionName: 'decide', url: engine, lineNumber: 9 },
              children: [3],
            },
            { id: 3, callFrame: { functionName: 'check', url: engine, lineNumber: 20 } },
            { id: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
          ],
          samples: [2, 3, 3, 4, 3],
          timeDeltas: [100, 100, 100, 100, 100],
          startTime: 1000,
          endTime: 1500,
        }),
      );
      const all = summarizeProfile(file);
      expect(all.process).toBe('policy-decision-main');
      expect(all.busyMs).toBeCloseTo(0.4);
      expect(all.byComponent).toEqual([{ component: 'hcp policy', ms: 0.4, share: 1 }]);
      expect(all.topInclusive[0]).toMatchObject({
        fn: expect.stringContaining('decide') as string,
        share: 1,
      });
      const windowed = summarizeProfile(file, { fromUs: 1150, toUs: 1300 });
      expect(windowed.busyMs).toBeCloseTo(0.2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('renderLatencyPlot', () => {
  it('draws one polyline per percentile per series, marks error steps, escapes names', () => {
    const svg = renderLatencyPlot('t <x>', [
      {
        name: 'a & b',
        points: [
          { offered: 100, p50: 0.2, p95: 0.5, p99: 1, errors: 0 },
          { offered: 200, p50: 0.3, p95: 1, p99: 12, errors: 3 },
        ],
      },
      { name: 'empty', points: [] },
    ]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg).toContain('a &#38; b');
    expect(svg).toContain('t &#60;x&#62;');
    expect(svg).toContain('stroke="#c00" stroke-width="2"');
  });
});
