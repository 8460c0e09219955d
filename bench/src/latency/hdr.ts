import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';

/** Longest latency a histogram tracks (ns): a minute, far past every per-call timeout we use. */
const HIGHEST_NS = 60e9;

/** A latency histogram in nanoseconds, 3 significant digits (HdrHistogram), so merging is exact. */
export function newHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
}

/** Records one sample; a value past the trackable range is clamped (and is then the max anyway). */
export function record(h: Histogram, ns: number): void {
  h.recordValue(Math.max(1, Math.min(HIGHEST_NS, Math.round(ns))));
}

/** Histograms cross process boundaries (worker → orchestrator) in HdrHistogram's compressed form. */
export function encode(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

/** The inverse of encode. */
export function decode(base64: string): Histogram {
  return decodeFromCompressedBase64(base64);
}

/** Sums histograms (several generator processes at one rate) into a new one. */
export function merge(parts: readonly Histogram[]): Histogram {
  const total = newHistogram();
  for (const p of parts) total.add(p);
  return total;
}

/** What the report and the JSON show for one histogram, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly minMs: number;
}

/** Reads the percentiles we report from a nanosecond histogram. */
export function summarizeHistogram(h: Histogram): LatencySummary {
  const ms = (ns: number) => ns / 1e6;
  if (h.totalCount === 0)
    return {
      count: 0,
      meanMs: NaN,
      p50Ms: NaN,
      p95Ms: NaN,
      p99Ms: NaN,
      p999Ms: NaN,
      maxMs: NaN,
      minMs: NaN,
    };
  return {
    count: h.totalCount,
    meanMs: ms(h.mean),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p95Ms: ms(h.getValueAtPercentile(95)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    minMs: ms(h.minNonZeroValue),
  };
}

/** Each percentile of `s` divided by the same percentile of `floor` (the ratios the issue asks for). */
export function ratioTo(
  s: LatencySummary,
  floor: LatencySummary,
): { p50: number; p95: number; p99: number; max: number } {
  return {
    p50: s.p50Ms / floor.p50Ms,
    p95: s.p95Ms / floor.p95Ms,
    p99: s.p99Ms / floor.p99Ms,
    max: s.maxMs / floor.maxMs,
  };
}
