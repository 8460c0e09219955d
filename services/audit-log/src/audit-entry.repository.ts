import { sql, type ExpressionBuilder, type Kysely, type Transaction } from 'kysely';
import type { AuditEntry, EndpointFamily, Outcome, ReasonCode } from '@hcp/core';
import { auditEntryTexts } from '@hcp/platform';
import type { AuditQueryFilter } from '@hcp/proto';
import { entryHash, hashedForm, type ChainedEntry } from './chain';
import { toNumber, type AuditDb, type AuditEntryRow } from './database';
import { escapeText, needsEscape, unescapeText } from './stored-text';

/** An entry with its ingest metadata, as the query API returns it. */
export type StoredAuditEntry = ChainedEntry & {
  /** The service that published the event (not covered by the hash). */
  readonly source: string;
  /** When audit-log committed it, epoch millis (not covered by the hash). */
  readonly ingestedAt: number;
};

/** Filters of a query; each one given narrows the result, none given matches everything. */
export interface AuditFilter extends AuditQueryFilter {
  /** The REST API's extra filter (the gRPC query has none). */
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

/**
 * A stored row in domain form: an escaped row's strings are unescaped (stored-text.ts), so the
 * entry is exactly what was appended and verify recomputes the hash over the original values.
 * Values the schema allows but the domain does not stay as stored, so verify sees them.
 */
export function rowToEntry(r: AuditEntryRow): StoredAuditEntry {
  const text = r.text_escaped ? unescapeText : (s: string) => s;
  const optText = (v: string | null) => (v === null ? undefined : text(v));
  const fields: Record<string, unknown> = {
    principalId: optText(r.principal_id),
    capabilityId: optText(r.capability_id),
    resourceRaw: optText(r.resource_raw),
    resourceCanonical: optText(r.resource_canonical),
    invariant: opt(r.invariant),
    check: optText(r.check_name),
    matchedGrantId: optText(r.matched_grant_id),
    missingGrant: optText(r.missing_grant),
    rule: optText(r.rule),
    approvalId: optText(r.approval_id),
    traceId: optText(r.trace_id),
  };
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  return {
    id: text(r.id),
    time: r.time.getTime(),
    decisionId: text(r.decision_id),
    endpointFamily: r.endpoint_family as EndpointFamily,
    outcome: r.outcome as Outcome,
    reason: r.reason as ReasonCode,
    handleIds: Array.isArray(r.handle_ids)
      ? r.handle_ids.map((h) => (typeof h === 'string' ? text(h) : h))
      : r.handle_ids,
    ...(fields as Partial<AuditEntry>),
    seq: toNumber(r.seq),
    prevHash: r.prev_hash,
    hash: r.hash,
    source: text(r.source),
    ingestedAt: r.ingested_at.getTime(),
  };
}

/** Text columns a filter compares (those that can hold a caller's string). */
type FilteredTextColumn = 'id' | 'principal_id' | 'capability_id' | 'trace_id' | 'decision_id';

/**
 * Characters of a caller-controlled filter column that its index covers (migration
 * 20261203160000): at most 4 bytes each, so the index row stays under btree's ~2.7 KB limit
 * however long the stored value is.
 */
export const INDEXED_PREFIX_CHARS = 512;

/**
 * `column = value` on the value as sent: a value PostgreSQL cannot hold is only in escaped rows
 * (in its escaped form); a value whose escaped form differs from it may be in either kind of row.
 * The escape is injective, so no other value ever matches.
 */
function textEquals(
  eb: ExpressionBuilder<AuditDb, 'audit_entries'>,
  column: FilteredTextColumn,
  value: string,
) {
  const escaped = escapeText(value);
  const stored = (text: string) =>
    column === 'principal_id' || column === 'capability_id' || column === 'trace_id'
      ? eb.and([
          eb(
            eb.fn('left', [eb.ref(column), sql.lit(INDEXED_PREFIX_CHARS)]),
            '=',
            eb.fn('left', [eb.val(text), sql.lit(INDEXED_PREFIX_CHARS)]),
          ),
          eb(column, '=', text),
        ])
      : eb(column, '=', text);
  if (needsEscape(value)) return eb.and([eb('text_escaped', '=', true), stored(escaped)]);
  if (escaped === value) return stored(value);
  return eb.or([
    eb.and([eb('text_escaped', '=', false), stored(value)]),
    eb.and([eb('text_escaped', '=', true), stored(escaped)]),
  ]);
}

/**
 * Appends entries under the head's row lock inside the caller's transaction (the repository's
 * appendBatch, and the migration that moved the old dead letters into the chain). See appendBatch.
 */
export async function appendEntries(
  tx: Transaction<AuditDb> | Kysely<AuditDb>,
  items: readonly { readonly entry: AuditEntry; readonly source: string }[],
  ingestedAt: number,
): Promise<AppendResult[]> {
  if (items.length === 0) return [];
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
    .where((eb) => eb.or(ids.map((id) => textEquals(eb, 'id', id))))
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
    return this.db.transaction().execute((tx) => appendEntries(tx, items, ingestedAt));
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
      .where((eb) => textEquals(eb, 'id', id))
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
    // Each filter is on the value as sent; textEquals finds it in whichever form its row stores.
    const { principalId, capabilityId, traceId, decisionId } = filter;
    if (principalId !== undefined) q = q.where((eb) => textEquals(eb, 'principal_id', principalId));
    if (filter.outcome !== undefined) q = q.where('outcome', '=', filter.outcome);
    if (filter.reason !== undefined) q = q.where('reason', '=', filter.reason);
    if (capabilityId !== undefined)
      q = q.where((eb) => textEquals(eb, 'capability_id', capabilityId));
    if (filter.endpointFamily !== undefined)
      q = q.where('endpoint_family', '=', filter.endpointFamily);
    if (filter.from !== undefined) q = q.where('time', '>=', new Date(filter.from));
    if (filter.to !== undefined) q = q.where('time', '<', new Date(filter.to));
    if (traceId !== undefined) q = q.where((eb) => textEquals(eb, 'trace_id', traceId));
    if (decisionId !== undefined) q = q.where((eb) => textEquals(eb, 'decision_id', decisionId));
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

/**
 * The audit_entries row of an entry at its place in the chain. A row is escaped as a whole when
 * any of its strings cannot be stored as it is (stored-text.ts); endpoint family, outcome, reason
 * and invariant are closed sets and stay plain.
 */
function entryRow(e: AuditEntry, chain: ChainFields) {
  const escaped = [...auditEntryTexts(e), chain.source].some(needsEscape);
  const t = escaped ? escapeText : (s: string) => s;
  const optText = (v: string | undefined) => (v === undefined ? null : t(v));
  return {
    seq: chain.seq,
    id: t(e.id),
    time: new Date(e.time),
    decision_id: t(e.decisionId),
    principal_id: optText(e.principalId),
    endpoint_family: e.endpointFamily,
    capability_id: optText(e.capabilityId),
    resource_raw: optText(e.resourceRaw),
    resource_canonical: optText(e.resourceCanonical),
    outcome: e.outcome,
    reason: e.reason,
    invariant: e.invariant ?? null,
    check_name: optText(e.check),
    matched_grant_id: optText(e.matchedGrantId),
    missing_grant: optText(e.missingGrant),
    rule: optText(e.rule),
    approval_id: optText(e.approvalId),
    handle_ids: JSON.stringify(e.handleIds.map(t)),
    trace_id: optText(e.traceId),
    prev_hash: chain.prevHash,
    hash: chain.hash,
    source: t(chain.source),
    ingested_at: new Date(chain.ingestedAt),
    text_escaped: escaped,
  };
}
