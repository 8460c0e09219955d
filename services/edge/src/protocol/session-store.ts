import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What the edge can say about a presented session id; `unknown` covers forged, foreign-key and garbage ids. */
export type SessionLookupState = 'active' | 'expired' | 'ended' | 'unknown';

/** The facts a session id carries (signed) plus the two facts that need shared state. */
export interface SessionRecord {
  readonly state: SessionLookupState;
  /** The short random session id (not the signed token); safe to log and audit. */
  readonly sid?: string;
  readonly ownerPrincipalId?: string;
  readonly negotiatedVersion?: string;
  /** True once notifications/initialized was seen for this session. */
  readonly initialized: boolean;
  readonly issuedAt?: number;
  readonly expiresAt?: number;
}

/**
 * Where MCP sessions live. Async because the shared implementation (a later issue) is a network
 * store; the edge never keeps a session only in its own memory.
 */
export interface SessionStore {
  /** Mints a session bound to the principal that initialized it; returns the Mcp-Session-Id value. */
  create(principalId: string, negotiatedVersion: string): Promise<string>;
  /** Never throws for bad input: anything that is not a live, authentic id is a non-active state. */
  get(sessionId: string): Promise<SessionRecord>;
  /** Records notifications/initialized; ignored for ids that are not active. */
  markInitialized(sessionId: string): Promise<void>;
  /** Ends the session (HTTP DELETE); later lookups say `ended` until it would have expired anyway. */
  end(sessionId: string): Promise<void>;
}

/**
 * The two session facts a signature cannot carry, because they change after the id is minted.
 * Entries only need to live until the session's own expiry. The in-memory implementation below
 * is per process: a multi-replica deployment (and one that must keep `initialized` across a
 * restart) swaps it for a shared store — the later session-storage issue.
 */
export interface SessionMarks {
  markInitialized(sid: string, expiresAt: number): Promise<void>;
  isInitialized(sid: string): Promise<boolean>;
  markEnded(sid: string, expiresAt: number): Promise<void>;
  isEnded(sid: string): Promise<boolean>;
  /**
   * Both facts in one read, for a store that keeps them under one key (a network round trip
   * saved per request). Must answer exactly what isEnded and isInitialized would, failing closed
   * the same way. Optional: without it the two are asked in turn.
   */
  lookup?(sid: string): Promise<{ readonly ended: boolean; readonly initialized: boolean }>;
}

/** One HMAC key of the keyring; `id` is written into every session so rotation can find the key. */
export interface SessionKey {
  readonly id: string;
  /** At least 32 bytes of secret; a shorter HMAC key can be brute-forced offline from one id. */
  readonly secret: string | Uint8Array;
}

/** Configuration of the signed store; the first key signs, every key verifies (rotation). */
export interface SignedSessionStoreOptions {
  readonly keys: readonly SessionKey[];
  /** Session lifetime; default 24 h. */
  readonly ttlMs?: number;
  /** Injected clock (epoch ms) for tests; default Date.now. */
  readonly now?: () => number;
  /** Where initialized/ended live; default a bounded in-memory set (single replica only). */
  readonly marks?: SessionMarks;
}

const MIN_KEY_BYTES = 32;
const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;
/** Bounds the work an attacker can make us do with a huge header before any crypto runs. */
const MAX_SESSION_ID_LENGTH = 1024;
const SESSION_ID_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const KEY_ID_SHAPE = /^[A-Za-z0-9._-]{1,64}$/;
const SID_SHAPE = /^[A-Za-z0-9_-]{22}$/;
/** Domain separation: a MAC made for a session can never be replayed as another HCP MAC. */
const MAC_CONTEXT = 'hcp-session-v1.';

/** The signed payload; times are epoch milliseconds like every other HCP timestamp. */
interface SessionPayload {
  readonly kid: string;
  readonly sid: string;
  readonly sub: string;
  readonly ver: string;
  readonly iat: number;
  readonly exp: number;
}

const UNKNOWN: SessionRecord = { state: 'unknown', initialized: false };

function keyBytes(key: SessionKey): Buffer {
  if (!KEY_ID_SHAPE.test(key.id))
    throw new Error(`session key id ${JSON.stringify(key.id)} invalid`);
  const bytes =
    typeof key.secret === 'string' ? Buffer.from(key.secret, 'utf8') : Buffer.from(key.secret);
  if (bytes.length < MIN_KEY_BYTES)
    throw new Error(`session key ${key.id} must be at least ${MIN_KEY_BYTES} bytes`);
  return bytes;
}

function parsePayload(text: string): SessionPayload | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const p = raw as Record<string, unknown>;
  const { kid, sid, sub, ver, iat, exp } = p;
  if (typeof kid !== 'string' || typeof sid !== 'string' || !SID_SHAPE.test(sid)) return undefined;
  if (typeof sub !== 'string' || sub === '' || typeof ver !== 'string' || ver === '')
    return undefined;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return undefined;
  return { kid, sid, sub, ver, iat: iat as number, exp: exp as number };
}

/**
 * Stateless sessions: the id is `base64url(payload).base64url(HMAC-SHA256)`, so any replica with
 * the keyring can verify it and a restart loses nothing that the id carries (owner, version,
 * expiry). Only `initialized` and `ended` need state; see SessionMarks.
 */
export class SignedSessionStore implements SessionStore {
  private readonly keys: ReadonlyMap<string, Buffer>;
  private readonly signingKeyId: string;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly marks: SessionMarks;

  constructor(options: SignedSessionStoreOptions) {
    const first = options.keys[0];
    if (first === undefined) throw new Error('session store: at least one key is required');
    const keys = new Map<string, Buffer>();
    for (const key of options.keys) {
      if (keys.has(key.id)) throw new Error(`session key id ${key.id} given twice`);
      keys.set(key.id, keyBytes(key));
    }
    this.keys = keys;
    this.signingKeyId = first.id;
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    if (!(this.ttlMs > 0)) throw new Error('session store: ttlMs must be positive');
    this.now = options.now ?? Date.now;
    this.marks = options.marks ?? new InMemorySessionMarks({ now: this.now });
  }

  create(principalId: string, negotiatedVersion: string): Promise<string> {
    if (principalId === '' || negotiatedVersion === '')
      return Promise.reject(new Error('session store: principal and version are required'));
    const iat = this.now();
    const payload: SessionPayload = {
      kid: this.signingKeyId,
      sid: randomBytes(16).toString('base64url'),
      sub: principalId,
      ver: negotiatedVersion,
      iat,
      exp: iat + this.ttlMs,
    };
    const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    const mac = this.mac(this.keys.get(this.signingKeyId)!, body);
    return Promise.resolve(`${body}.${mac.toString('base64url')}`);
  }

  async get(sessionId: string): Promise<SessionRecord> {
    const payload = this.verify(sessionId);
    if (payload === undefined) return UNKNOWN;
    const base = {
      sid: payload.sid,
      ownerPrincipalId: payload.sub,
      negotiatedVersion: payload.ver,
      issuedAt: payload.iat,
      expiresAt: payload.exp,
    };
    // Expiry first: the marks may already have forgotten an expired session.
    if (this.now() >= payload.exp) return { ...base, state: 'expired', initialized: false };
    if (this.marks.lookup !== undefined) {
      const marks = await this.marks.lookup(payload.sid);
      if (marks.ended) return { ...base, state: 'ended', initialized: false };
      return { ...base, state: 'active', initialized: marks.initialized };
    }
    if (await this.marks.isEnded(payload.sid))
      return { ...base, state: 'ended', initialized: false };
    return { ...base, state: 'active', initialized: await this.marks.isInitialized(payload.sid) };
  }

  async markInitialized(sessionId: string): Promise<void> {
    const payload = this.verify(sessionId);
    if (payload === undefined || this.now() >= payload.exp) return;
    await this.marks.markInitialized(payload.sid, payload.exp);
  }

  async end(sessionId: string): Promise<void> {
    const payload = this.verify(sessionId);
    if (payload === undefined || this.now() >= payload.exp) return;
    await this.marks.markEnded(payload.sid, payload.exp);
  }

  /** The authentic payload, or undefined for anything forged, truncated or signed by an unknown key. */
  private verify(sessionId: string): SessionPayload | undefined {
    if (typeof sessionId !== 'string' || sessionId.length > MAX_SESSION_ID_LENGTH) return undefined;
    if (!SESSION_ID_SHAPE.test(sessionId)) return undefined;
    const dot = sessionId.indexOf('.');
    const body = sessionId.slice(0, dot);
    const presented = Buffer.from(sessionId.slice(dot + 1), 'base64url');
    // The kid is read before the MAC is checked only to pick the key; nothing else is trusted yet.
    const payload = parsePayload(Buffer.from(body, 'base64url').toString('utf8'));
    if (payload === undefined) return undefined;
    const key = this.keys.get(payload.kid);
    if (key === undefined) return undefined;
    const expected = this.mac(key, body);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
      return undefined;
    return payload;
  }

  private mac(key: Buffer, body: string): Buffer {
    return createHmac('sha256', key).update(MAC_CONTEXT).update(body).digest();
  }
}

/** Bounds for the in-memory marks. */
export interface InMemorySessionMarksOptions {
  /** Entries per set; default 100 000. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/**
 * Per-process SessionMarks: two maps sid -> session expiry, pruned of expired entries and capped.
 * When a set is full after pruning, the entry nearest its expiry is dropped. For `initialized`
 * that fails closed (the session must initialize again); for `ended` it lets the owner — and only
 * the owner, the session stays bound to it — use a session it had ended, which is no more than a
 * new session would give it. A shared store (later issue) removes both limits.
 */
export class InMemorySessionMarks implements SessionMarks {
  private readonly initialized = new Map<string, number>();
  private readonly ended = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: InMemorySessionMarksOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
    if (!(this.maxEntries > 0)) throw new Error('session marks: maxEntries must be positive');
    this.now = options.now ?? Date.now;
  }

  markInitialized(sid: string, expiresAt: number): Promise<void> {
    // Ended wins, as in the shared store: a session once ended is never initialized again.
    if (!this.has(this.ended, sid)) this.put(this.initialized, sid, expiresAt);
    return Promise.resolve();
  }

  isInitialized(sid: string): Promise<boolean> {
    return Promise.resolve(this.has(this.initialized, sid));
  }

  markEnded(sid: string, expiresAt: number): Promise<void> {
    this.put(this.ended, sid, expiresAt);
    this.initialized.delete(sid);
    return Promise.resolve();
  }

  isEnded(sid: string): Promise<boolean> {
    return Promise.resolve(this.has(this.ended, sid));
  }

  /** Entries currently held (tests and metrics). */
  size(): { initialized: number; ended: number } {
    return { initialized: this.initialized.size, ended: this.ended.size };
  }

  private has(set: Map<string, number>, sid: string): boolean {
    const exp = set.get(sid);
    if (exp === undefined) return false;
    if (this.now() >= exp) {
      set.delete(sid);
      return false;
    }
    return true;
  }

  private put(set: Map<string, number>, sid: string, expiresAt: number): void {
    if (!set.has(sid) && set.size >= this.maxEntries) {
      const now = this.now();
      for (const [k, exp] of set) if (now >= exp) set.delete(k);
      if (set.size >= this.maxEntries) {
        let victim: string | undefined;
        let soonest = Infinity;
        for (const [k, exp] of set)
          if (exp < soonest) {
            soonest = exp;
            victim = k;
          }
        if (victim !== undefined) set.delete(victim);
      }
    }
    set.set(sid, expiresAt);
  }
}
