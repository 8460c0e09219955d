import { Inject, Injectable } from '@nestjs/common';
import { HcpError, newHandleId, type DenialReason, type HandleRecord } from '@hcp/core';
import { createLogger, invalidArgument } from '@hcp/platform';
import { recordDecision, refuse } from '@hcp/policy';
import {
  vaultAllow,
  vaultCheck,
  vaultSubject,
  type DenialRule,
  type VaultAuditFacts,
  type VaultAuditPublisher,
  type VaultOperation,
} from './handle-audit';
import { GroupCommit } from './group-commit';
import { HandleRepository, type PutOutcome, type StoredHandle } from './handle.repository';
import {
  VAULT_AUDIT,
  VAULT_CLOCK,
  VAULT_KEYRING,
  VAULT_LIMITS,
  type Clock,
} from './handle-vault.tokens';
import {
  FIELD_LIMITS,
  optionalReason,
  requireCapabilityId,
  requireHandleId,
  requireLabels,
  requirePrincipalId,
  requireText,
} from './handle-vault.validation';
import type { VaultKeyring } from './keyring';
import type { VaultLimits } from './limits';
import {
  PayloadCipher,
  PayloadKeyUnavailableError,
  PayloadUnauthenticatedError,
} from './payload-cipher';
import { renderPreview, type Preview } from './redaction';

/** What Put asks for; id, timestamps and size are the vault's. */
export interface PutInput {
  readonly ownerPrincipalId: string;
  readonly producingCapability: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Undefined: the default TTL. Longer than the maximum: capped. */
  readonly ttlMs?: number;
  readonly payload: Uint8Array;
}

/** What Peek asks for. */
export interface PeekInput {
  readonly principalId: string;
  readonly handleId: string;
  /** 0: the default preview length; above the maximum: capped. */
  readonly maxBytes: number;
}

/** Peek's answer: the metadata and a bounded, redacted preview. */
export interface PeekResult extends Preview {
  readonly handle: HandleRecord;
}

/** What ResolveForPipe asks for. */
export interface ResolveInput {
  readonly principalId: string;
  readonly handleId: string;
  /** The DecidePipe allow decision authorising this read. */
  readonly decisionId: string;
}

/** ResolveForPipe's answer: the metadata and the whole payload. */
export interface ResolveResult {
  readonly handle: HandleRecord;
  readonly payload: Buffer;
}

/** What Delete asks for. */
export interface DeleteInput {
  readonly principalId: string;
  readonly handleId: string;
}

/** What ExpireNow asks for; the operator comes from the caller's credential, not the request. */
export interface ExpireNowInput {
  readonly operatorId: string;
  readonly handleId: string;
  readonly reason: string;
}

/** Rows re-sealed per query in rotateKeys. */
export const ROTATE_BATCH = 100;
/** Most Puts grouped into one statement. */
export const PUT_GROUP_MAX_ITEMS = 64;
/** Most payload bytes grouped into one statement; a single larger Put goes alone. */
export const PUT_GROUP_MAX_BYTES = 8 * 1024 * 1024;
/** Rows deleted per statement by the sweeper. */
export const SWEEP_BATCH = 1000;

/** Owner-facing identical message for an unknown handle, a foreign one and one that fails authentication. */
function notOwned(handleId: string): HcpError {
  return new HcpError(
    'HANDLE_NOT_OWNED',
    `handle ${handleId} does not exist or belongs to another principal`,
  );
}

/**
 * The vault's rules: validation, size limits, ownership and expiry (I4, again
 * here as defence in depth: the PDP decides pipes, the vault still refuses a
 * foreign handle), sealing, and an audit entry for every peek, pipe, delete
 * and expiry, allowed or denied (I7). A decision is recorded before any data
 * leaves or any row changes; a full audit buffer refuses the call first.
 */
@Injectable()
export class HandleService {
  private readonly log = createLogger('HandleService');
  private readonly cipher: PayloadCipher;
  /** Concurrent Puts, grouped into one statement (ADR 0005 §1). */
  private readonly puts: GroupCommit<StoredHandle, PutOutcome>;

  constructor(
    @Inject(HandleRepository) private readonly handles: HandleRepository,
    @Inject(VAULT_AUDIT) private readonly audit: VaultAuditPublisher,
    @Inject(VAULT_KEYRING) private readonly keyring: VaultKeyring,
    @Inject(VAULT_LIMITS) private readonly limits: VaultLimits,
    @Inject(VAULT_CLOCK) private readonly clock: Clock,
  ) {
    this.cipher = new PayloadCipher(keyring);
    this.puts = new GroupCommit(
      (group) => this.handles.putWithinQuota(group, limits.maxPrincipalBytes),
      {
        maxItems: PUT_GROUP_MAX_ITEMS,
        maxBytes: PUT_GROUP_MAX_BYTES,
        sizeOf: (h) => h.sealed.ciphertext.length,
      },
    );
  }

  async put(input: PutInput): Promise<HandleRecord> {
    const owner = requirePrincipalId('ownerPrincipalId', input.ownerPrincipalId);
    const capability = requireCapabilityId('producingCapability', input.producingCapability);
    const labels = requireLabels('labels', input.labels);
    const ttlMs = this.ttlOf(input.ttlMs);
    const size = input.payload.length;
    const { maxHandleBytes, maxPrincipalBytes } = this.limits;
    if (size > maxHandleBytes)
      throw new HcpError(
        'PAYLOAD_TOO_LARGE',
        `payload is ${size} bytes; the per-handle limit is ${maxHandleBytes}`,
        { limit: 'per_handle', limitBytes: maxHandleBytes, sizeBytes: size },
      );
    const now = this.clock();
    const record: HandleRecord = {
      id: newHandleId(),
      ownerPrincipalId: owner,
      producingCapability: capability,
      labels,
      createdAt: now,
      expiresAt: now + ttlMs,
      sizeBytes: size,
    };
    // Sealed before the statement: the principal's lock is held only for the quota check and insert.
    const sealed = this.cipher.seal(bindingOf(record), input.payload);
    const outcome = await this.puts.submit({ record, sealed });
    if (!outcome.stored) {
      const used = outcome.usedBytes;
      throw new HcpError(
        'PAYLOAD_TOO_LARGE',
        `payload of ${size} bytes would bring the principal's live handles to ${used + size} bytes; the per-principal limit is ${maxPrincipalBytes}`,
        {
          limit: 'per_principal',
          limitBytes: maxPrincipalBytes,
          sizeBytes: size,
          usedBytes: used,
        },
      );
    }
    return record;
  }

  async peek(input: PeekInput): Promise<PeekResult> {
    const { stored, facts } = await this.authorize('peek', input, {
      extra: () => this.previewBytes(input.maxBytes),
    });
    const payload = this.openPayload(stored, facts);
    const preview = renderPreview(payload, this.previewBytes(input.maxBytes));
    this.allow(facts);
    return { handle: stored.record, ...preview };
  }

  /**
   * A handle's metadata for its owner, expired or not, without opening the payload: what the
   * edge needs to ask for a pipe decision. Not audited here, because the decision point
   * records the decision it leads to; unknown and foreign handles get one answer (I4).
   */
  async describe(input: {
    readonly principalId: string;
    readonly handleId: string;
  }): Promise<HandleRecord> {
    const principalId = requirePrincipalId('principalId', input.principalId);
    const handleId = requireHandleId('handleId', input.handleId);
    const stored = await this.handles.findById(handleId);
    if (stored === undefined || stored.record.ownerPrincipalId !== principalId)
      throw notOwned(handleId);
    return stored.record;
  }

  async resolveForPipe(input: ResolveInput): Promise<ResolveResult> {
    const { stored, facts } = await this.authorize('resolve_for_pipe', input, {
      decisionId: input.decisionId,
    });
    const payload = this.openPayload(stored, facts);
    this.allow(facts);
    return { handle: stored.record, payload };
  }

  /** Deletes a handle the principal owns, expired or not; afterwards it is unknown. */
  async delete(input: DeleteInput): Promise<void> {
    const { stored, facts } = await this.authorize('delete', input, { allowExpired: true });
    this.allow(facts);
    // Gone meanwhile (a concurrent delete or the sweeper): the outcome the caller wanted.
    await this.handles.deleteOwned(stored.record.id, stored.record.ownerPrincipalId);
  }

  /** An operator action: expires the handle now, keeping its metadata (later use is HANDLE_EXPIRED). */
  async expireNow(input: ExpireNowInput): Promise<HandleRecord> {
    this.requireAuditPath();
    const now = this.clock();
    const operator =
      input.operatorId === ''
        ? undefined
        : attempt(() => requirePrincipalId('operator', input.operatorId));
    const handleId = attempt(() => requireHandleId('handleId', input.handleId));
    const note = attempt(() => optionalReason('reason', input.reason));
    const facts: VaultAuditFacts = {
      operation: 'expire_now',
      time: now,
      ...(operator?.ok === true && { principalId: operator.value }),
      ...(handleId.ok && { handleId: handleId.value }),
      ...(note.ok && note.value !== '' && { note: note.value }),
    };
    if (operator === undefined)
      this.deny(
        facts,
        'PRINCIPAL_UNAUTHENTICATED',
        'operator_missing',
        new HcpError('PRINCIPAL_UNAUTHENTICATED', 'ExpireNow needs the operator principal id'),
      );
    const invalid: (e: Error) => never = (e) =>
      this.deny(facts, 'INPUT_INVALID', 'input_invalid', e);
    if (!operator.ok) invalid(operator.error);
    if (!handleId.ok) invalid(handleId.error);
    if (!note.ok) invalid(note.error);
    const id = handleId.value;
    const stored = await this.handles.findById(id);
    if (stored === undefined) this.deny(facts, 'HANDLE_NOT_OWNED', 'handle_unknown', notOwned(id));
    this.allow(facts);
    const updated = await this.handles.expire(id, now);
    if (updated === undefined) throw notOwned(id);
    return updated;
  }

  /**
   * Re-seals every live row not under the active key, in batches, each row
   * with a compare-and-set on its old key id. Returns how many rows it
   * re-sealed. A row it cannot open (its key missing, or failing
   * authentication) is logged and left as it is.
   */
  async rotateKeys(batchSize = ROTATE_BATCH): Promise<number> {
    const active = this.keyring.activeKeyId;
    let after = '';
    let rotated = 0;
    let skipped = 0;
    for (;;) {
      const rows = await this.handles.liveNotUnderKey(active, this.clock(), after, batchSize);
      for (const row of rows) {
        after = row.record.id;
        try {
          const sealed = this.cipher.reseal(bindingOf(row.record), row.sealed);
          if (sealed === undefined) continue;
          if (await this.handles.replaceSealed(row.record.id, row.sealed.keyId, sealed)) rotated++;
        } catch (err: unknown) {
          if (
            !(err instanceof PayloadKeyUnavailableError) &&
            !(err instanceof PayloadUnauthenticatedError)
          )
            throw err;
          skipped++;
          this.log.error(
            { handleId: row.record.id, keyId: row.sealed.keyId, err: err.message },
            'rotateKeys cannot re-seal this row; left under its old key',
          );
        }
      }
      if (rows.length < batchSize) break;
    }
    this.log.info({ activeKeyId: active, rotated, skipped }, 'key rotation pass finished');
    return rotated;
  }

  /** Purges rows expired longer than the retention; how many went. */
  async sweepExpired(batchSize = SWEEP_BATCH): Promise<number> {
    const cutoff = this.clock() - this.limits.expiredRetentionMs;
    let total = 0;
    for (;;) {
      const n = await this.handles.deleteExpired(cutoff, batchSize);
      total += n;
      if (n < batchSize) break;
    }
    return total;
  }

  // ---------- the shared decision path ----------

  /**
   * Validates, finds the row, checks ownership and (unless allowed) expiry.
   * Every refusal is audited and thrown; the caller records the allow once it
   * is about to act, so a failure after this point is not audited as allowed.
   */
  private async authorize(
    operation: VaultOperation,
    input: { readonly principalId: string; readonly handleId: string },
    options: { decisionId?: string; allowExpired?: boolean; extra?: () => unknown } = {},
  ): Promise<{ stored: StoredHandle; facts: VaultAuditFacts }> {
    this.requireAuditPath();
    const now = this.clock();
    const principal = attempt(() => requirePrincipalId('principalId', input.principalId));
    const handle = attempt(() => requireHandleId('handleId', input.handleId));
    const decision =
      options.decisionId === undefined
        ? undefined
        : attempt(() =>
            requireText('decisionId', options.decisionId ?? '', FIELD_LIMITS.decisionIdLength),
          );
    const extra = options.extra === undefined ? undefined : attempt(options.extra);
    const facts: VaultAuditFacts = {
      operation,
      time: now,
      ...(principal.ok && { principalId: principal.value }),
      ...(handle.ok && { handleId: handle.value }),
      ...(decision?.ok === true && { decisionId: decision.value }),
    };
    const invalid: (e: Error) => never = (e) =>
      this.deny(facts, 'INPUT_INVALID', 'input_invalid', e);
    if (!principal.ok) invalid(principal.error);
    if (!handle.ok) invalid(handle.error);
    if (decision?.ok === false) invalid(decision.error);
    if (extra?.ok === false) invalid(extra.error);
    const principalId = principal.value;
    const handleId = handle.value;

    const stored = await this.handles.findById(handleId);
    // One answer for "no such handle" and "someone else's": ids cannot be probed (I4).
    if (stored === undefined)
      this.deny(facts, 'HANDLE_NOT_OWNED', 'handle_unknown', notOwned(handleId));
    if (stored.record.ownerPrincipalId !== principalId)
      this.deny(facts, 'HANDLE_NOT_OWNED', 'owner_mismatch', notOwned(handleId));
    // Only the owner learns that a handle expired.
    if (options.allowExpired !== true && stored.record.expiresAt <= now)
      this.deny(
        facts,
        'HANDLE_EXPIRED',
        'expired',
        new HcpError('HANDLE_EXPIRED', `handle ${handleId} expired`),
      );
    return { stored, facts };
  }

  /** Decrypts the row; a row that fails authentication is, to the caller, a handle it does not own. */
  private openPayload(stored: StoredHandle, facts: VaultAuditFacts): Buffer {
    try {
      return this.cipher.open(bindingOf(stored.record), stored.sealed);
    } catch (err: unknown) {
      if (err instanceof PayloadUnauthenticatedError) {
        this.log.error(
          { handleId: stored.record.id, keyId: stored.sealed.keyId },
          'payload failed authentication: the row was altered or moved to another id or owner',
        );
        this.deny(facts, 'HANDLE_NOT_OWNED', 'payload_unauthenticated', notOwned(stored.record.id));
      }
      if (err instanceof PayloadKeyUnavailableError)
        this.log.error({ handleId: stored.record.id, keyId: err.keyId }, err.message);
      throw err;
    }
  }

  /** I7: refuse before acting when the audit buffer is at its bound. */
  private requireAuditPath(): void {
    if (!this.audit.available())
      throw new HcpError(
        'AUDIT_UNAVAILABLE',
        'the audit publisher is at its buffer bound; refusing to act unaudited',
      );
  }

  private allow(facts: VaultAuditFacts): void {
    recordDecision(this.audit, vaultAllow(facts), vaultSubject(facts));
  }

  /**
   * Refuses through the one refusal path (the denial and its entry) and throws the refusal
   * naming the decision id of that entry, so the caller (the edge) passes it on rather than
   * recording the refusal again. A refusal under a DecidePipe decision keeps that id. When the
   * audit takes no entry, its AUDIT_UNAVAILABLE is thrown instead: nothing is refused unrecorded.
   */
  private deny(facts: VaultAuditFacts, reason: DenialReason, rule: DenialRule, err: Error): never {
    const refused = refuse(
      this.audit,
      {
        reason,
        check: vaultCheck(facts.operation),
        explanation: err.message,
        decidedAt: facts.time,
        ...(facts.decisionId === undefined ? {} : { id: facts.decisionId }),
      },
      vaultSubject({ ...facts, rule }),
    );
    if (!refused.audited) throw refused.auditError ?? err;
    if (!(err instanceof HcpError)) throw err;
    throw new HcpError(err.reason, err.message, {
      ...err.details,
      decisionId: refused.decision.id,
    });
  }

  private ttlOf(ttlMs: number | undefined): number {
    if (ttlMs === undefined) return this.limits.defaultTtlMs;
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0)
      throw invalidArgument('ttl', 'must be at least one millisecond when set');
    return Math.min(ttlMs, this.limits.maxTtlMs);
  }

  private previewBytes(maxBytes: number): number {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw invalidArgument('maxBytes', 'must be 0 (the default) or positive');
    if (maxBytes === 0) return this.limits.defaultPeekBytes;
    return Math.min(maxBytes, this.limits.maxPeekBytes);
  }
}

function bindingOf(record: HandleRecord): { handleId: string; ownerPrincipalId: string } {
  return { handleId: record.id, ownerPrincipalId: record.ownerPrincipalId };
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: Error };

/** Runs a validator, keeping its error: the audit entry carries only the fields that passed. */
function attempt<T>(fn: () => T): Attempt<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err: unknown) {
    if (err instanceof HcpError) return { ok: false, error: err };
    throw err;
  }
}
