import { sql, type Kysely } from 'kysely';
import type { AuditEntry, EndpointFamily, Outcome, ReasonCode } from '@hcp/core';
import { entryHash, hashedForm, type ChainedEntry } from './chain';
import { toNumber, type AuditDb, type AuditEntryRow } from './database';

/** An entry with its ingest metadata, as the query API returns it. */
export type StoredAuditEntry = ChainedEntry & {
  /** The service that published the event (not covered by the hash). */
  readonly source: string;
  /** When audit-log committed it, epoch millis (not covered by the hash). */
  readonly ingestedAt: number;
};

/** Filters of a query; each one given narrows the result, none given matches everything. */
export interface AuditFilter {
  readonly principalId?: string;
  readonly outcome?: Outcome;
  readonly reason?: ReasonCode;
  readonly capabilityId?: string;
  readonly endpointFamily?: EndpointFamily;
  /** Inclusive lower bound on the entry's time, epoch millis. */
  readonly from?: number;
  /** Exclusive upper bound on the entry's time, epoch millis. */
  readonly to?: number;
  readonly traceId?: string;
  readonly decisionId?: string;
}

/** What an append did. */
export type AppendResult =
  | { readonly status: 'appended'; readonly seq: number; readonly hash: string }
  /** The id was already in the chain; `sameContent` is false when the new event differs from it. */
  | { readonly status: 'duplicate'; readonly seq: number; readonly sameContent: boolean };

/** The position and hash of the chain's last entry (seq 0 and the genesis hash when empty). */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

function opt<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

/** A stored row in domain form. Values the schema allows but the domain does not stay as stored, so verify sees them. */
export function rowToEntry(r: AuditEntryRow): StoredAuditEntry {
  const fields: Record<string, unknown> = {
    principalId: opt(r.principal_id),
    capabilityId: opt(r.capability_id),
    resourceRaw: opt(r.resource_raw),
    resourceCanonical: opt(r.resource_canonical),
    invariant: opt(r.invariant),
    check: opt(r.check_name),
    matchedGrantId: opt(r.matched_grant_id),
    missingGrant: opt(r.missing_grant),
    rule: opt(r.rule),
    approvalId: opt(r.approval_id),
    traceId: opt(r.trace_id),
  };
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  return {
    id: r.id,
    time: r.time.getTime(),
    decisionId: r.decision_id,
    endpointFamily: r.endpoint_family as EndpointFamily,
    outcome: r.outcome as Outcome,
    reason: r.reason as ReasonCode,
    handleIds: r.handle_ids,
    ...(fields as Partial<AuditEntry>),
    seq: toNumber(r.seq),
    prevHash: r.prev_hash,
    hash: r.hash,
    source: r.source,
    ingestedAt: r.ingested_at.getTime(),
  };
}

/**
 * The chain in PostgreSQL: append under the head's row lock, and read it back. All I/O of the
 * audit entries lives here; the rules (validation, cursors, verification) live in the services.
 */
export class AuditEntryRepository {
  constructor(private readonly db: Kysely<AuditDb>) {}

  /**
   * Appends one entry: a batch of one (lock the head row, serialising every appender, also
   * across replicas; skip an id already stored; link to the head; insert; move the head).
   */
  async append(entry: AuditEntry, source: string, ingestedAt: number): Promise<AppendResult> {
    return (await this.appendBatch([{ entry, source }], ingestedAt))[0]!;
  }

  /**
   * Appends entries in one transaction under the head's row lock, linked in the order given: the
   * chain is the same as appending them one by one, at one lock and one commit. An id already
   * stored (or earlier in the batch) is skipped as a duplicate. Results are in input order.
   */
  async appendBatch(
    items: readonly { readonly entry: AuditEntry; readonly source: string }[],
    ingestedAt: number,
  ): Promise<AppendResult[]> {
    if (items.length === 0) return [];
    return this.db.transaction().execute(async (tx) => {
      const head = await tx
        .selectFrom('audit_chain_head')
        .select(['seq', 'hash'])
        .where('id', '=', 1)
        .forUpdate()
        .executeTakeFirstOrThrow();
      const ids = [...new Set(items.map((i) => i.entry.id))];
      const stored = new Map<string, { seq: number; form: string }>();
      for (const row of await tx
        .selectFrom('audit_entries')
        .selectAll()
        .where('id', 'in', ids)
        .execute()) {
        const e = rowToEntry(row);
        stored.set(e.id, { seq: e.seq, form: JSON.stringify(hashedForm(e)) });
      }
      let seq = toNumber(head.seq);
      let hash = head.hash;
      const rows: Parameters<typeof entryRow>[] = [];
      const results: AppendResult[] = [];
      for (const { entry, source } of items) {
        const existing = stored.get(entry.id);
        if (existing !== undefined) {
          const same = existing.form === JSON.stringify(hashedForm(entry));
          results.push({ status: 'duplicate', seq: existing.seq, sameContent: same });
          continue;
        }
        const prevHash = hash;
        seq += 1;
        hash = entryHash(prevHash, entry);
        rows.push([entry, { seq, prevHash, hash, source, ingestedAt }]);
        stored.set(entry.id, { seq, form: JSON.stringify(hashedForm(entry)) });
        results.push({ status: 'appended', seq, hash });
      }
      if (rows.length > 0) {
        await tx
          .insertInto('audit_entries')
          .values(rows.map((r) => entryRow(...r)))
          .execute();
        await tx.updateTable('audit_chain_head').set({ seq, hash }).where('id', '=', 1).execute();
      }
      return results;
    });
  }

  async head(): Promise<ChainHead> {
    const h = await this.db
      .selectFrom('audit_chain_head')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return { seq: toNumber(h.seq), hash: h.hash };
  }

  async get(id: string): Promise<StoredAuditEntry | undefined> {
    const row = await this.db
      .selectFrom('audit_entries')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToEntry(row);
  }

  /** The stored entry at one seq (verify's starting point for a partial range). */
  async atSeq(seq: number): Promise<StoredAuditEntry | undefined> {
    const row = await this.db
      .selectFrom('audit_entries')
      .selectAll()
      .where('seq', '=', seq)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToEntry(row);
  }

  /** Up to `limit` entries matching every filter with seq > afterSeq, in seq order. */
  async query(filter: AuditFilter, afterSeq: number, limit: number): Promise<StoredAuditEntry[]> {
    let q = this.db.selectFrom('audit_entries').selectAll().where('seq', '>', afterSeq);
    if (filter.principalId !== undefined) q = q.where('principal_id', '=', filter.principalId);
    if (filter.outcome !== undefined) q = q.where('outcome', '=', filter.outcome);
    if (filter.reason !== undefined) q = q.where('reason', '=', filter.reason);
    if (filter.capabilityId !== undefined) q = q.where('capability_id', '=', filter.capabilityId);
    if (filter.endpointFamily !== undefined)
      q = q.where('endpoint_family', '=', filter.endpointFamily);
    if (filter.from !== undefined) q = q.where('time', '>=', new Date(filter.from));
    if (filter.to !== undefined) q = q.where('time', '<', new Date(filter.to));
    if (filter.traceId !== undefined) q = q.where('trace_id', '=', filter.traceId);
    if (filter.decisionId !== undefined) q = q.where('decision_id', '=', filter.decisionId);
    const rows = await q.orderBy('seq', 'asc').limit(limit).execute();
    return rows.map(rowToEntry);
  }

  /** Entries with fromSeq <= seq <= toSeq, in seq order, at most `limit` (verify pages through it). */
  async range(fromSeq: number, toSeq: number, limit: number): Promise<StoredAuditEntry[]> {
    const rows = await this.db
      .selectFrom('audit_entries')
      .selectAll()
      .where('seq', '>=', fromSeq)
      .where('seq', '<=', toSeq)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map(rowToEntry);
  }

  /** Liveness of the database for readiness. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}

interface ChainFields {
  seq: number;
  prevHash: string;
  hash: string;
  source: string;
  ingestedAt: number;
}

/** The audit_entries row of an entry at its place in the chain. */
function entryRow(e: AuditEntry, chain: ChainFields) {
  return {
    seq: chain.seq,
    id: e.id,
    time: new Date(e.time),
    decision_id: e.decisionId,
    principal_id: e.principalId ?? null,
    endpoint_family: e.endpointFamily,
    capability_id: e.capabilityId ?? null,
    resource_raw: e.resourceRaw ?? null,
    resource_canonical: e.resourceCanonical ?? null,
    outcome: e.outcome,
    reason: e.reason,
    invariant: e.invariant ?? null,
    check_name: e.check ?? null,
    matched_grant_id: e.matchedGrantId ?? null,
    missing_grant: e.missingGrant ?? null,
    rule: e.rule ?? null,
    approval_id: e.approvalId ?? null,
    handle_ids: JSON.stringify(e.handleIds),
    trace_id: e.traceId ?? null,
    prev_hash: chain.prevHash,
    hash: chain.hash,
    source: chain.source,
    ingested_at: new Date(chain.ingestedAt),
  };
}
