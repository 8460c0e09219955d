import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { HcpError } from '@hcp/core';
import { createLogger } from '@hcp/platform';
import type { SessionMarks } from './session-store';

/**
 * The slice of a NATS KV bucket the marks use. A real `@nats-io/kv` bucket satisfies it; unit
 * tests hand in a fake so the fail-closed rules can be exercised without a server.
 */
export interface MarksBucket {
  get(key: string): Promise<{ readonly operation: string; string(): string } | null>;
  /** Writes only when the key holds no live value; rejects when it does. */
  create(key: string, value: string): Promise<number>;
  put(key: string, value: string): Promise<number>;
}

/** Bounds and names of the shared session marks. */
export interface NatsSessionMarksOptions {
  /** KV bucket name; default `hcp_session_marks`. Every replica must use the same one. */
  readonly bucket?: string;
  /**
   * The longest session the edge mints (SignedSessionStore's ttlMs; default 24 h). The bucket
   * keeps entries for this plus one hour, so a mark outlives its session and nothing more.
   */
  readonly sessionTtlMs?: number;
  /** Bound on each KV read or write; default 1000 ms. A slower answer counts as unreachable. */
  readonly timeoutMs?: number;
  /** Bucket replicas in a clustered NATS; default 1. */
  readonly replicas?: number;
  /** Injected clock (epoch ms) for tests; default Date.now. */
  readonly now?: () => number;
}

/** How to reach NATS when the marks open their own connection. */
export interface NatsSessionMarksConnectOptions extends NatsSessionMarksOptions {
  /** e.g. `nats://127.0.0.1:4222`; several separated by commas. */
  readonly servers: string;
  /** Connection name shown by the server; default `hcp-edge-session-marks`. */
  readonly name?: string;
  /** Initial connect timeout; default 5000 ms. */
  readonly connectTimeoutMs?: number;
}

/** Default bucket of the session marks; every edge replica must agree on it. */
export const DEFAULT_SESSION_MARKS_BUCKET = 'hcp_session_marks';

const DEFAULT_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
/** Clock skew between replicas, and the gap between minting a session and marking it. */
const BUCKET_TTL_MARGIN_MS = 60 * 60 * 1000;
const DEFAULT_TIMEOUT_MS = 1000;
/** KV keys are NATS subject tokens; a sid is base64url, and anything else is refused before a round trip. */
const SID_SHAPE = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_VALUE_BYTES = 128;

type MarkState = 'initialized' | 'ended';

interface MarkValue {
  readonly state: MarkState;
  readonly expiresAt: number;
}

const log = createLogger('NatsSessionMarks');

function encode(value: MarkValue): string {
  return JSON.stringify({ state: value.state, expiresAt: value.expiresAt });
}

/** Undefined for anything that is not a value this class wrote. */
function decode(text: string): MarkValue | undefined {
  if (text.length > MAX_VALUE_BYTES) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { state, expiresAt } = raw as Record<string, unknown>;
  if (state !== 'initialized' && state !== 'ended') return undefined;
  if (!Number.isSafeInteger(expiresAt)) return undefined;
  return { state, expiresAt: expiresAt as number };
}

function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function unavailable(what: string, err: unknown): HcpError {
  return new HcpError(
    'POLICY_UNAVAILABLE',
    `session marks unavailable: ${what}: ${err instanceof Error ? err.message : String(err)}`,
  );
}

/**
 * SessionMarks on a NATS JetStream KV bucket, so every edge replica — and an edge after a
 * restart — sees the same `initialized` and `ended` facts. One key per session
 * sid; its value is the state and the session's expiry. `ended` always wins: `initialized` is only
 * ever created, never written over an existing mark, while `ended` overwrites. The bucket's TTL
 * bounds how long any mark is kept.
 *
 * Reads fail closed: a bucket that cannot be read in time says "not initialized" and "ended", so
 * an unreachable NATS refuses sessions rather than reviving ended ones. Writes throw HcpError
 * `POLICY_UNAVAILABLE`, so the lifecycle step they record is reported as failed.
 */
export class NatsSessionMarks implements SessionMarks {
  private readonly timeoutMs: number;
  /** How long the bucket keeps a mark (its TTL); logged at start so operators can check it. */
  readonly bucketTtlMs: number;
  private readonly now: () => number;
  private readonly onClose: () => Promise<void>;

  /**
   * Wraps a bucket directly (tests, or a caller that opened it itself). `bucketTtlMs` is how long
   * the bucket keeps a value (default: sessionTtlMs plus one hour); `onClose` runs on close().
   */
  constructor(
    private readonly bucket: MarksBucket,
    options: NatsSessionMarksOptions = {},
    extras: { readonly bucketTtlMs?: number; readonly onClose?: () => Promise<void> } = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new Error('session marks: timeoutMs must be positive');
    this.bucketTtlMs = extras.bucketTtlMs ?? bucketTtlOf(options);
    this.now = options.now ?? Date.now;
    this.onClose = extras.onClose ?? (() => Promise.resolve());
  }

  /**
   * Opens (creating when absent) the bucket on an existing connection; the caller keeps owning
   * the connection. Refuses a bucket whose TTL is unbounded or shorter than a session, because
   * such a bucket would keep marks forever or forget an `ended` while its session still lives.
   */
  static async open(
    nc: NatsConnection,
    options: NatsSessionMarksOptions = {},
  ): Promise<NatsSessionMarks> {
    const { kv, ttlMs } = await openBucket(nc, options);
    return new NatsSessionMarks(kv, options, { bucketTtlMs: ttlMs });
  }

  /** Opens a connection of its own (closed by close()) and the bucket on it. */
  static async connect(options: NatsSessionMarksConnectOptions): Promise<NatsSessionMarks> {
    const nc = await connect({
      servers: options.servers.split(',').map((s) => s.trim()),
      name: options.name ?? 'hcp-edge-session-marks',
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: options.connectTimeoutMs ?? 5000,
      // No Error (stack trace) built per KV get to decorate a failure that rarely comes.
      noAsyncTraces: true,
    });
    try {
      const { kv, ttlMs } = await openBucket(nc, options);
      return new NatsSessionMarks(kv, options, { bucketTtlMs: ttlMs, onClose: () => nc.close() });
    } catch (err: unknown) {
      await nc.close();
      throw err;
    }
  }

  async markInitialized(sid: string, expiresAt: number): Promise<void> {
    const value = this.valueFor('initialized', sid, expiresAt);
    try {
      await withTimeout('create', this.timeoutMs, this.bucket.create(sid, value));
    } catch (err: unknown) {
      // A live mark already there (initialized twice, or ended) is the outcome we want: keep it.
      const existing = await this.read(sid).catch(() => null);
      if (existing === null) throw unavailable('markInitialized', err);
    }
  }

  async isInitialized(sid: string): Promise<boolean> {
    try {
      const mark = await this.read(sid);
      return mark !== null && mark.state === 'initialized' && this.now() < mark.expiresAt;
    } catch (err: unknown) {
      log.warn({ err }, 'session marks unreadable: treating the session as not initialized');
      return false;
    }
  }

  async markEnded(sid: string, expiresAt: number): Promise<void> {
    const value = this.valueFor('ended', sid, expiresAt);
    try {
      await withTimeout('put', this.timeoutMs, this.bucket.put(sid, value));
    } catch (err: unknown) {
      throw unavailable('markEnded', err);
    }
  }

  async isEnded(sid: string): Promise<boolean> {
    try {
      const mark = await this.read(sid);
      return mark !== null && mark.state === 'ended' && this.now() < mark.expiresAt;
    } catch (err: unknown) {
      log.warn({ err }, 'session marks unreadable: treating the session as ended');
      return true;
    }
  }

  /** One KV get for both facts (they live under the one key); unreadable = ended, not initialized. */
  async lookup(sid: string): Promise<{ readonly ended: boolean; readonly initialized: boolean }> {
    try {
      const mark = await this.read(sid);
      const live = mark !== null && this.now() < mark.expiresAt;
      return {
        ended: live && mark.state === 'ended',
        initialized: live && mark.state === 'initialized',
      };
    } catch (err: unknown) {
      log.warn({ err }, 'session marks unreadable: treating the session as ended');
      return { ended: true, initialized: false };
    }
  }

  /** Closes the connection when connect() opened it; a no-op for open(). */
  close(): Promise<void> {
    return this.onClose();
  }

  /** The live mark, null when there is none; throws when unreachable, malformed or a bad sid. */
  private async read(sid: string): Promise<MarkValue | null> {
    if (!SID_SHAPE.test(sid)) throw new Error('session marks: malformed sid');
    const entry = await withTimeout('get', this.timeoutMs, this.bucket.get(sid));
    if (entry === null || entry.operation !== 'PUT') return null;
    const mark = decode(entry.string());
    if (mark === undefined) throw new Error('session marks: malformed value');
    return mark;
  }

  private valueFor(state: MarkState, sid: string, expiresAt: number): string {
    if (!SID_SHAPE.test(sid)) throw new HcpError('INPUT_INVALID', 'session marks: malformed sid');
    if (!Number.isSafeInteger(expiresAt))
      throw new HcpError('INPUT_INVALID', 'session marks: expiresAt must be epoch milliseconds');
    // The bucket would drop the mark before the session expires: an `ended` would come back to life.
    if (expiresAt - this.now() > this.bucketTtlMs)
      throw new HcpError(
        'INPUT_INVALID',
        `session marks: session outlives the bucket TTL (${this.bucketTtlMs} ms); raise sessionTtlMs`,
      );
    return encode({ state, expiresAt });
  }
}

/**
 * Creates the bucket when absent, or binds to the existing one. Refuses a bucket whose TTL is
 * unbounded or shorter than a session: it would keep marks forever, or forget an `ended` while
 * its session still lives. Returns the bucket's actual TTL.
 */
async function openBucket(
  nc: NatsConnection,
  options: NatsSessionMarksOptions,
): Promise<{ kv: KV; ttlMs: number }> {
  const name = options.bucket ?? DEFAULT_SESSION_MARKS_BUCKET;
  const wanted = bucketTtlOf(options);
  const sessionTtl = wanted - BUCKET_TTL_MARGIN_MS;
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const kv = await new Kvm(jetstream(nc, { timeout })).create(name, {
    ttl: wanted,
    history: 1,
    replicas: options.replicas ?? 1,
    maxValueSize: MAX_VALUE_BYTES,
    description: 'HCP edge session marks (initialized/ended) keyed by session sid',
    timeout,
  });
  const { ttl } = await kv.status();
  if (!(ttl > 0) || ttl < sessionTtl)
    throw new HcpError(
      'INPUT_INVALID',
      `session marks bucket ${name}: its TTL (${ttl} ms) must be set and at least the session TTL (${sessionTtl} ms); delete the bucket or raise its TTL`,
    );
  return { kv, ttlMs: ttl };
}

function bucketTtlOf(options: NatsSessionMarksOptions): number {
  const sessionTtl = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  if (!(sessionTtl > 0)) throw new Error('session marks: sessionTtlMs must be positive');
  return sessionTtl + BUCKET_TTL_MARGIN_MS;
}
