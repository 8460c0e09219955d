import {
  newHandleId,
  type AuditEntry,
  type Decision,
  type HandleRecord,
  type Principal,
} from '@hcp/core';
import type { PolicyEngine } from '@hcp/policy';
import {
  auditEntryFor,
  type CallFacts,
  type DecideRequest,
  type Explanation,
  type PolicyContext,
  type RequestEnvelope,
} from '@hcp/policy';

/** A handle as the in-memory vault keeps it. */
interface StoredHandle {
  readonly record: HandleRecord;
  readonly payload: string;
}

/** Result of an operation that may produce a handle. */
export interface TaskResult {
  readonly decision: Decision;
  readonly handleId?: string;
}

/** Result of a peek. */
export interface PeekResult {
  readonly decision: Decision;
  readonly preview?: string;
}

const SECRET_PATTERN = /\b(api[_-]?key|token|secret|password|passwd)\b\s*[:=]\s*\S+/gi;

/** Bounded, redacted preview: at most `max` characters, with obvious credentials masked. */
export function redactedPreview(payload: string, max: number): string {
  const head = payload.length > max ? payload.slice(0, max) : payload;
  return head.replace(SECRET_PATTERN, '$1=[REDACTED]');
}

/**
 * The local in-memory runtime: the same engine as the services, with handles
 * in a Map and audit entries in a bounded ring. It is what the microbenchmark
 * measures and what the walk-through drives; it has no network and no store.
 */
export class LocalRuntime {
  private readonly handles = new Map<string, StoredHandle>();
  private readonly audit: AuditEntry[] = [];
  private auditNext = 0;

  constructor(
    readonly engine: PolicyEngine,
    private readonly contextOf: (principalId: string) => PolicyContext,
    private readonly handleTtlMs = 3_600_000,
    private readonly auditRing = 10_000,
  ) {}

  /** Explain a call: every check, in order, with its verdict. */
  explain(req: DecideRequest): Explanation {
    return this.engine.explain(req, this.contextOf(req.principal?.id ?? ''));
  }

  /** Task start: decide a tools/call and, on allow, hold its output in a new handle. */
  startTask(req: DecideRequest, output: string): TaskResult {
    const decision = this.engine.decide(req, this.contextOf(req.principal?.id ?? ''));
    this.record(auditEntryFor(req, decision, { endpointFamily: 'tools/call', call: req.call }));
    if (decision.outcome === 'deny' || req.principal === undefined) return { decision };
    const handleId = this.put(req.principal, req.call.capabilityId, output, req.now, {});
    return { decision, handleId };
  }

  /** Peek: the owner gets a bounded, redacted preview; anyone else a denial. */
  peek(env: RequestEnvelope, handleId: string, maxChars = 256): PeekResult {
    const stored = this.handles.get(handleId);
    const decision = this.engine.decidePeek({
      ...env,
      handleId,
      ...(stored ? { handle: stored.record } : {}),
    });
    this.record(
      auditEntryFor(env, decision, { endpointFamily: 'handle/peek', handleIds: [handleId] }),
    );
    if (decision.outcome === 'deny' || stored === undefined) return { decision };
    return { decision, preview: redactedPreview(stored.payload, maxChars) };
  }

  /** Pipe write: source ownership + target decision, then the target's output becomes a new handle. */
  pipeWrite(env: RequestEnvelope, sourceHandleId: string, target: CallFacts): TaskResult {
    const stored = this.handles.get(sourceHandleId);
    const req = { ...env, sourceHandleId, target, ...(stored ? { source: stored.record } : {}) };
    const decision = this.engine.decidePipe(req, this.contextOf(env.principal?.id ?? ''));
    this.record(
      auditEntryFor(env, decision, {
        endpointFamily: 'handle/pipe',
        call: target,
        handleIds: [sourceHandleId],
      }),
    );
    if (decision.outcome === 'deny' || stored === undefined || env.principal === undefined)
      return { decision };
    const labels = stored.record.labels;
    const handleId = this.put(env.principal, target.capabilityId, stored.payload, env.now, labels);
    return { decision, handleId };
  }

  /** Number of handles held; lets callers bound memory in long runs. */
  get handleCount(): number {
    return this.handles.size;
  }

  /** Drops every handle (benchmark housekeeping between phases). */
  clearHandles(): void {
    this.handles.clear();
  }

  /** The most recent audit entries, oldest first. */
  recentAudit(): AuditEntry[] {
    const n = Math.min(this.auditNext, this.auditRing);
    const out: AuditEntry[] = [];
    for (let i = this.auditNext - n; i < this.auditNext; i++)
      out.push(this.audit[i % this.auditRing]!);
    return out;
  }

  private put(
    owner: Principal,
    capability: string,
    payload: string,
    now: number,
    labels: Readonly<Record<string, string>>,
  ): string {
    const id = newHandleId();
    const record: HandleRecord = {
      id,
      ownerPrincipalId: owner.id,
      producingCapability: capability,
      labels,
      createdAt: now,
      expiresAt: now + this.handleTtlMs,
      sizeBytes: Buffer.byteLength(payload),
    };
    this.handles.set(id, { record, payload });
    return id;
  }

  private record(entry: AuditEntry): void {
    this.audit[this.auditNext % this.auditRing] = entry;
    this.auditNext++;
  }
}
