import type { Operation, Targets } from './targets';

/**
 * Jobs the orchestrator (main.ts) sends a worker process (worker.ts) over the IPC channel.
 * Histograms come back HdrHistogram-encoded (compressed base64), so several workers merge exactly.
 */
export type Job =
  | {
      readonly kind: 'series';
      readonly ops: readonly Operation[];
      readonly iterations: number;
      readonly warmup: number;
      readonly block: number;
      readonly maxMs: number;
      /** Wait for the machine to go idle before each block (the previous block's audit backlog). */
      readonly quiesce: boolean;
      /** Longest wait for idle before a block (the machine may be shared and never go idle). */
      readonly quiesceTimeoutMs?: number;
    }
  | {
      readonly kind: 'load';
      readonly op: Operation;
      readonly rate: number;
      readonly durationMs: number;
      readonly maxInFlight: number;
      readonly maxRequests: number;
      readonly graceMs: number;
    }
  | { readonly kind: 'local'; readonly iterations: number; readonly warmup: number }
  | {
      readonly kind: 'miss';
      readonly trials: number;
      readonly settleMs: number;
      readonly maxMs: number;
    }
  | { readonly kind: 'revoke'; readonly trials: number; readonly maxMs: number }
  | { readonly kind: 'prepare' }
  | { readonly kind: 'exit' };

/** The first message a worker gets: where everything is. */
export interface WorkerInit {
  readonly kind: 'init';
  readonly targets: Targets;
  /** Distinguishes this run's principals from an earlier run's on a kept stack. */
  readonly runId: string;
}

/** A worker's answer to one job. */
export type JobReply =
  | { readonly ok: true; readonly result: JobResult }
  | { readonly ok: false; readonly error: string };

/** What a job returns (histograms encoded). */
export interface JobResult {
  readonly histograms: Record<string, string>;
  readonly counts: Record<string, number>;
  readonly errorSamples: readonly string[];
  readonly truncated?: boolean;
}
