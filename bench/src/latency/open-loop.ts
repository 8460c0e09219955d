import type { Histogram } from 'hdr-histogram-js';
import { newHistogram, record } from './hdr';

/** One fixed-rate step of the open-loop generator. */
export interface OpenLoopOptions {
  /** Arrivals per second; requests are sent on this schedule whether or not earlier ones finished. */
  readonly rate: number;
  readonly durationMs: number;
  /** Bound on requests in flight; an arrival beyond it is not sent and counts as dropped (an error). */
  readonly maxInFlight: number;
  /** Bound on requests in the step, whatever rate × duration says. */
  readonly maxRequests: number;
  /** How long after the last arrival in-flight requests may still finish; the rest are errors. */
  readonly graceMs: number;
  /** Nanosecond clock (tests inject one). */
  readonly now?: () => number;
}

/** What one step measured. Latencies in the histograms are nanoseconds. */
export interface OpenLoopResult {
  readonly rate: number;
  readonly durationMs: number;
  readonly scheduled: number;
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  /** Arrivals not sent because maxInFlight requests were outstanding. */
  readonly dropped: number;
  /** Requests still outstanding when the grace period ended. */
  readonly timedOut: number;
  /** Successful completions per second over the step's wall time (first arrival to last completion). */
  readonly achievedRps: number;
  /** Latency from the arrival's scheduled time to completion: includes the generator's own lag. */
  readonly fromSchedule: Histogram;
  /** Latency from the moment the request was actually sent to completion. */
  readonly fromSend: Histogram;
  /** How late the generator sent each request relative to its schedule. */
  readonly sendLag: Histogram;
  readonly errorSamples: readonly string[];
}

const hrNow = (): number => Number(process.hrtime.bigint());

/**
 * Sends `op` on a fixed schedule (arrival i at start + i/rate) and records each completion,
 * never waiting for one call before starting the next: an open-loop generator, so a slow
 * server shows up as latency rather than as a lower send rate (no coordinated omission).
 * Node's timers fire no sooner than ~1 ms, so at rates above ~1,000/s arrivals go out in
 * small bursts each millisecond; `sendLag` and `fromSchedule` show what that costs.
 */
export function runOpenLoop(op: () => Promise<void>, o: OpenLoopOptions): Promise<OpenLoopResult> {
  if (!(o.rate > 0) || !(o.durationMs > 0) || o.maxInFlight < 1 || o.maxRequests < 1)
    throw new RangeError('rate, duration, maxInFlight and maxRequests must be positive');
  const now = o.now ?? hrNow;
  const interval = 1e9 / o.rate;
  const total = Math.min(o.maxRequests, Math.max(1, Math.floor((o.rate * o.durationMs) / 1000)));
  const fromSchedule = newHistogram();
  const fromSend = newHistogram();
  const sendLag = newHistogram();
  const errorSamples: string[] = [];
  let next = 0;
  let inFlight = 0;
  let sent = 0;
  let ok = 0;
  let errors = 0;
  let dropped = 0;
  let lastDone = 0;
  const start = now() + 1e6;

  return new Promise((resolve) => {
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(hardStop);
      const wallNs = Math.max(lastDone - start, (total - 1) * interval, 1);
      resolve({
        rate: o.rate,
        durationMs: o.durationMs,
        scheduled: total,
        sent,
        ok,
        errors: errors + dropped + inFlight,
        dropped,
        timedOut: inFlight,
        achievedRps: ok / (wallNs / 1e9),
        fromSchedule,
        fromSend,
        sendLag,
        errorSamples,
      });
    };
    const fail = (err: unknown) => {
      errors++;
      if (errorSamples.length < 5)
        errorSamples.push(err instanceof Error ? err.message : String(err));
    };
    const tick = () => {
      if (finished) return;
      const t = now();
      while (next < total && start + next * interval <= t) {
        const intended = start + next * interval;
        next++;
        if (inFlight >= o.maxInFlight) {
          dropped++;
          continue;
        }
        inFlight++;
        sent++;
        const sentAt = now();
        record(sendLag, sentAt - intended + 1);
        let p: Promise<void>;
        try {
          p = op();
        } catch (err: unknown) {
          p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        p.then(
          () => {
            if (finished) return;
            const done = now();
            lastDone = done;
            ok++;
            record(fromSchedule, done - intended);
            record(fromSend, done - sentAt);
          },
          (err: unknown) => {
            if (!finished) fail(err);
          },
        ).finally(() => {
          if (finished) return;
          inFlight--;
          if (next >= total && inFlight === 0) finish();
        });
      }
      if (next < total) {
        const waitMs = (start + next * interval - now()) / 1e6;
        // setTimeout(0) is clamped to 1 ms anyway; never spin with setImmediate (it would eat
        // a core the servers under test need on a 2-core machine).
        timer = setTimeout(tick, Math.max(0, Math.floor(waitMs)));
      } else if (inFlight === 0) finish();
    };
    const hardStop = setTimeout(finish, o.durationMs + o.graceMs + 1000);
    timer = setTimeout(tick, 1);
  });
}
