import type { Histogram } from 'hdr-histogram-js';
import { newHistogram, record } from './hdr';

const hrNow = (): number => Number(process.hrtime.bigint());

/** A closed-loop series: how many calls, after how many unmeasured ones, in blocks of what size. */
export interface SeriesOptions {
  readonly iterations: number;
  readonly warmup: number;
  /** Calls of one operation in a row before switching to the next. */
  readonly block: number;
  /** Bound on the whole series; the blocks done by then are kept. */
  readonly maxMs: number;
  /** Called before every block (e.g. wait for the machine to go idle); not timed. */
  readonly beforeBlock?: () => Promise<unknown>;
}

/** Nanosecond histograms per operation, and how many calls failed (errors are not timed). */
export interface SeriesResult {
  readonly histograms: Record<string, Histogram>;
  readonly errors: Record<string, number>;
  readonly errorSamples: readonly string[];
  readonly truncated: boolean;
}

/**
 * Times each operation one call at a time (the next call starts when the previous one
 * returned), interleaving the operations in blocks so that machine noise hits every series
 * alike: the unloaded latency of each path, compared in the same run.
 */
export async function runSeries(
  ops: Readonly<Record<string, () => Promise<void>>>,
  o: SeriesOptions,
): Promise<SeriesResult> {
  const names = Object.keys(ops);
  const histograms: Record<string, Histogram> = {};
  const errors: Record<string, number> = {};
  const errorSamples: string[] = [];
  for (const n of names) {
    histograms[n] = newHistogram();
    errors[n] = 0;
  }
  const call = async (name: string, timed: boolean) => {
    const op = ops[name]!;
    const t0 = hrNow();
    try {
      await op();
      if (timed) record(histograms[name]!, hrNow() - t0);
    } catch (err: unknown) {
      errors[name] = (errors[name] ?? 0) + 1;
      if (errorSamples.length < 5)
        errorSamples.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const deadline = Date.now() + o.maxMs;
  for (const n of names)
    for (let i = 0; i < o.warmup && Date.now() < deadline; i++) await call(n, false);
  let truncated = false;
  for (let done = 0; done < o.iterations; done += o.block) {
    if (Date.now() > deadline) {
      truncated = true;
      break;
    }
    const size = Math.min(o.block, o.iterations - done);
    for (const n of names) {
      await o.beforeBlock?.();
      for (let i = 0; i < size; i++) await call(n, true);
    }
  }
  return { histograms, errors, errorSamples, truncated };
}
