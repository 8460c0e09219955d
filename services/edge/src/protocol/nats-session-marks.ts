import { jetstream } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
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
  /**
   * Keep "initialized and not ended" per session in memory while a watch on the bucket runs
   * (ADR 0005 §3); default true when the marks open the bucket themselves.
   */
  readonly cache?: boolean;
}

/** What the cache needs: the bucket's change feed and the connection's status. */
export interface MarksWatchSource {
  /** Every change of a key from now on; the iterator ends when the watch stops. */
  watch(): Promise<AsyncIterable<{ readonly key: string }> & { stop(): void }>;
  /** Connection status events (`disconnect`, `reconnect`, ...). */
  status(): AsyncIterable<{ readonly type: string }>;
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
/** Sessions cached at most; the oldest goes first. */
const MAX_CACHED_SESSIONS = 10_000;
/** Pause before a watch that ended is started again. */
const REWATCH_DELAY_MS = 500;

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
   * Sessions last read as initialized and not ended, with their expiry. Served only while the
   * watch runs (`watching`); every change of a key drops its entry, and the whole map is dropped
   * whenever the watch stops, so a miss or a stopped watch reads the bucket as before.
   */
  private readonly live = new Map<string, number>();
  private watching = false;
  /** Changes seen by the watch; a read overtaken by one is not cached (it may be stale). */
  private changes = 0;
  private closed = false;
  private watcher: { stop(): void } | undefined;

  /**
   * Wraps a bucket directly (tests, or a caller that opened it itself). `bucketTtlMs` is how long
   * the bucket keeps a value (default: sessionTtlMs plus one hour); `onClose` runs on close().
   */
  constructor(
    private readonly bucket: MarksBucket,
    options: NatsSessionMarksOptions = {},
    extras: {
      readonly bucketTtlMs?: number;
      readonly onClose?: () => Promise<void>;
      /** With a source, "initialized" is cached while its watch runs. */
      readonly watch?: MarksWatchSource;
    } = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new Error('session marks: timeoutMs must be positive');
    this.bucketTtlMs = extras.bucketTtlMs ?? bucketTtlOf(options);
    this.now = options.now ?? Date.now;
    this.onClose = extras.onClose ?? (() => Promise.resolve());
    if (extras.watch !== undefined) this.follow(extras.watch);
  }

  /** True while the watch runs and the cache may answer (tests, metrics). */
  get cacheActive(): boolean {
    return this.watching;
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
    return new NatsSessionMarks(kv, options, {
      bucketTtlMs: ttlMs,
      ...(options.cache === false ? {} : { watch: watchSourceOf(kv, nc) }),
    });
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
      return new NatsSessionMarks(kv, options, {
        bucketTtlMs: ttlMs,
        onClose: () => nc.close(),
        ...(options.cache === false ? {} : { watch: watchSourceOf(kv, nc) }),
      });
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
    if (this.cachedLive(sid)) return true;
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
    this.forget(sid);
    try {
      await withTimeout('put', this.timeoutMs, this.bucket.put(sid, value));
    } catch (err: unknown) {
      throw unavailable('markEnded', err);
    }
  }

  async isEnded(sid: string): Promise<boolean> {
    if (this.cachedLive(sid)) return false;
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
    if (this.cachedLive(sid)) return { ended: false, initialized: true };
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

  /** Stops the watch; closes the connection when connect() opened it. */
  close(): Promise<void> {
    this.closed = true;
    this.stopServing();
    this.watcher?.stop();
    return this.onClose();
  }

  /** The live mark, null when there is none; throws when unreachable, malformed or a bad sid. */
  private async read(sid: string): Promise<MarkValue | null> {
    if (!SID_SHAPE.test(sid)) throw new Error('session marks: malformed sid');
    const changesBefore = this.changes;
    const entry = await withTimeout('get', this.timeoutMs, this.bucket.get(sid));
    if (entry === null || entry.operation !== 'PUT') return null;
    const mark = decode(entry.string());
    if (mark === undefined) throw new Error('session marks: malformed value');
    // Cached only if the watch ran through the whole read and saw no change meanwhile.
    if (
      mark.state === 'initialized' &&
      this.watching &&
      this.changes === changesBefore &&
      this.now() < mark.expiresAt
    ) {
      this.live.set(sid, mark.expiresAt);
      if (this.live.size > MAX_CACHED_SESSIONS)
        this.live.delete(this.live.keys().next().value as string);
    }
    return mark;
  }

  /** Initialized and not ended, from the cache: only while the watch runs and before expiry. */
  private cachedLive(sid: string): boolean {
    if (!this.watching) return false;
    const expiresAt = this.live.get(sid);
    if (expiresAt === undefined) return false;
    if (this.now() < expiresAt) return true;
    this.live.delete(sid);
    return false;
  }

  private forget(sid: string): void {
    this.changes++;
    this.live.delete(sid);
  }

  /** Fail closed: nothing is served from the cache until a new watch runs. */
  private stopServing(): void {
    this.watching = false;
    this.changes++;
    this.live.clear();
  }

  /**
   * Runs the watch for as long as the marks are open: every change of a key drops its entry. The
   * cache serves only while a watch runs; a disconnect, or a watch that ended, stops it (and a
   * new watch starts after a reconnect or a short pause), so the marks fall back to a read per
   * request, never to a stale answer.
   */
  private follow(source: MarksWatchSource): void {
    const run = async (): Promise<void> => {
      while (!this.closed) {
        try {
          const changes = await source.watch();
          if (this.closed) {
            changes.stop();
            return;
          }
          this.watcher = changes;
          this.watching = true;
          for await (const change of changes) this.forget(change.key);
        } catch (err: unknown) {
          log.warn({ err }, 'session marks watch failed: reading the bucket per request');
        }
        this.stopServing();
        if (!this.closed) await new Promise((r) => setTimeout(r, REWATCH_DELAY_MS).unref());
      }
    };
    void run();
    void (async () => {
      try {
        for await (const event of source.status()) {
          if (this.closed) return;
          if (event.type === 'disconnect') {
            this.stopServing();
            // A watch that survives the outage may have missed changes: start a new one.
            this.watcher?.stop();
          }
        }
      } catch {
        // The status feed ends with the connection.
      }
    })();
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

/** The bucket's change feed (every key, updates only) and the connection's status feed. */
function watchSourceOf(kv: KV, nc: NatsConnection): MarksWatchSource {
  return {
    watch: () => kv.watch({ include: KvWatchInclude.UpdatesOnly }),
    status: () => nc.status(),
  };
}

function bucketTtlOf(options: NatsSessionMarksOptions): number {
  const sessionTtl = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  if (!(sessionTtl > 0)) throw new Error('session marks: sessionTtlMs must be positive');
  return sessionTtl + BUCKET_TTL_MARGIN_MS;
}
