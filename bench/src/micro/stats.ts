/** Summary of one measured operation, in milliseconds. */
export interface Summary {
  readonly iterations: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Mean, p50, p99, min and max of samples given in nanoseconds, reported in milliseconds. */
export function summarize(samplesNs: Float64Array): Summary {
  const sorted = Float64Array.from(samplesNs).sort();
  let total = 0;
  for (const v of sorted) total += v;
  const ms = (ns: number) => ns / 1e6;
  return {
    iterations: sorted.length,
    meanMs: ms(total / sorted.length),
    p50Ms: ms(percentile(sorted, 50)),
    p99Ms: ms(percentile(sorted, 99)),
    minMs: ms(sorted[0] ?? NaN),
    maxMs: ms(sorted[sorted.length - 1] ?? NaN),
  };
}

/** Runs `op` `warmup` times unmeasured, then `iterations` times, timing each call with hrtime. */
export function measure(
  op: (i: number) => unknown,
  iterations: number,
  warmup: number,
): Float64Array {
  let sink: unknown;
  for (let i = 0; i < warmup; i++) sink = op(i);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    sink = op(i);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  if (sink === Symbol.for('never')) console.log('');
  return samples;
}
