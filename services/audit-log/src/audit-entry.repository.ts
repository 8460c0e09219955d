import { CompiledQuery, sql, type ExpressionBuilder, type Kysely, type Transaction } from 'kysely';
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
 * Appends entries under the head's row lock inside the caller's transaction, reading which ids are
 * already stored: the repository's locked path (a redelivered batch) and the migration that moved
 * the old dead letters into the chain. See AuditEntryRepository.appendBatch.
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

/** The columns the one-statement append writes from arrays, in order, with their SQL types. */
const ARRAY_COLUMNS = [
  ['seq', 'int8'],
  ['id', 'text'],
  ['time', 'timestamptz'],
  ['decision_id', 'text'],
  ['principal_id', 'text'],
  ['endpoint_family', 'text'],
  ['capability_id', 'text'],
  ['resource_raw', 'text'],
  ['resource_canonical', 'text'],
  ['outcome', 'text'],
  ['reason', 'text'],
  ['invariant', 'text'],
  ['check_name', 'text'],
  ['matched_grant_id', 'text'],
  ['missing_grant', 'text'],
  ['rule', 'text'],
  ['approval_id', 'text'],
  ['handle_ids', 'text'],
  ['trace_id', 'text'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
  ['source', 'text'],
  ['text_escaped', 'bool'],
] as const;

/**
 * One batch in one statement (ADR 0005 §1): move the head only if it is still the remembered
 * (seq, hash), and insert the rows, from one array per column (the parameter count does not grow
 * with the batch), only if it moved. $1/$2 the new head, $3/$4 the remembered one, $5 ingested_at,
 * then one array per ARRAY_COLUMNS entry. Returns how many rows it inserted: all, or none when
 * another writer moved the head. Raw SQL: building it with kysely per batch cost more CPU than the
 * statement's own work (ADR 0005, the audit-log profile).
 */
const APPEND_SQL = `with moved as (
  update audit_chain_head set seq = $1, hash = $2 where id = 1 and seq = $3 and hash = $4
  returning 1
), inserted as (
  insert into audit_entries (${ARRAY_COLUMNS.map(([c]) => c).join(', ')}, ingested_at)
  select ${ARRAY_COLUMNS.map(([c]) => (c === 'handle_ids' ? 'u.handle_ids::jsonb' : `u.${c}`)).join(', ')},
    $5::timestamptz
  from unnest(${ARRAY_COLUMNS.map(([, t], i) => `$${i + 6}::${t}[]`).join(', ')})
    as u(${ARRAY_COLUMNS.map(([c]) => c).join(', ')})
  where exists (select 1 from moved)
  returning 1
)
select count(*)::int as n from inserted`;

/** Attempts at the one statement before a batch takes the locked path (writers keep racing). */
const MAX_GUARDED_ATTEMPTS = 8;

/** True for PostgreSQL's unique_violation: an id already stored (a redelivery). */
function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '23505';
}

/** How the writer's appends went since start (for stats and tests). */
export interface WriterStats {
  /** One-statement appends that committed. */
  statements: number;
  /** One-statement appends that found the head moved by another writer (then reloaded, retried). */
  headMoved: number;
  /** Batches that took the locked path (an id already stored, or writers racing too long). */
  lockedFallbacks: number;
}

/** A batch linked onto a head in memory: its rows, each item's result, and the new head. */
interface LinkedBatch {
  readonly rows: ReturnType<typeof entryRow>[];
  readonly results: AppendResult[];
  readonly head: ChainHead;
  /** ingested_at of every row, as timestamptz text. */
  readonly ingestedAt: string;
}

/**
 * Links a batch onto `head` without reading the table: seq, prev_hash and hash per entry, the
 * same as appending them one by one. An id earlier in the batch is a duplicate of it (same or
 * different content); an id already stored is left to the statement's unique index.
 */
function linkBatch(
  head: ChainHead,
  items: readonly { readonly entry: AuditEntry; readonly source: string }[],
  ingestedAt: number,
): LinkedBatch {
  let { seq, hash } = head;
  const rows: ReturnType<typeof entryRow>[] = [];
  const results: AppendResult[] = [];
  const seen = new Map<string, { seq: number; entry: AuditEntry }>();
  for (const { entry, source } of items) {
    const earlier = seen.get(entry.id);
    if (earlier !== undefined) {
      const same = JSON.stringify(hashedForm(earlier.entry)) === JSON.stringify(hashedForm(entry));
      results.push({ status: 'duplicate', seq: earlier.seq, sameContent: same });
      continue;
    }
    const prevHash = hash;
    seq += 1;
    hash = entryHash(prevHash, entry);
    rows.push(entryRow(entry, { seq, prevHash, hash, source, ingestedAt }));
    seen.set(entry.id, { seq, entry });
    results.push({ status: 'appended', seq, hash });
  }
  return { rows, results, head: { seq, hash }, ingestedAt: new Date(ingestedAt).toISOString() };
}

/**
 * The chain in PostgreSQL: append, and read it back. All I/O of the audit entries lives here; the
 * rules (validation, cursors, verification) live in the services.
 *
 * Appending (ADR 0005 §1): the repository is its process's single chain writer. It remembers the
 * head (seq, hash), links a batch in memory and writes it in one statement guarded by that head;
 * appends queue behind each other. Safety does not rest on there being one writer: the guard and
 * the seq primary key keep the chain linear when another process appends too (its statement
 * finds the head moved, reloads it and tries again).
 */
export class AuditEntryRepository {
  /** The head as of this writer's last append; undefined until read, and after any failure. */
  private known: ChainHead | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  readonly writerStats: WriterStats = { statements: 0, headMoved: 0, lockedFallbacks: 0 };

  constructor(private readonly db: Kysely<AuditDb>) {}

  /** Appends one entry: a batch of one. */
  async append(entry: AuditEntry, source: string, ingestedAt: number): Promise<AppendResult> {
    return (await this.appendBatch([{ entry, source }], ingestedAt))[0]!;
  }

  /**
   * Appends entries linked in the order given: the chain is the same as appending them one by
   * one, in one statement. An id already stored (or earlier in the batch) is skipped as a
   * duplicate; the batch then takes the locked path (`appendEntries`), which tells each duplicate
   * from a same-id event with different content. Results are in input order. Appends of one
   * repository run one at a time, in call order.
   */
  appendBatch(
    items: readonly { readonly entry: AuditEntry; readonly source: string }[],
    ingestedAt: number,
  ): Promise<AppendResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    const run = this.queue.then(() => this.write(items, ingestedAt));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(
    items: readonly { readonly entry: AuditEntry; readonly source: string }[],
    ingestedAt: number,
  ): Promise<AppendResult[]> {
    for (let attempt = 0; attempt < MAX_GUARDED_ATTEMPTS; attempt++) {
      const from = this.known ?? (await this.head());
      const linked = linkBatch(from, items, ingestedAt);
      let inserted: number;
      try {
        inserted = await this.insertGuarded(from, linked);
      } catch (err: unknown) {
        this.known = undefined;
        if (!isUniqueViolation(err)) throw err;
        return this.appendLocked(items, ingestedAt);
      }
      if (inserted === linked.rows.length) {
        this.known = linked.head;
        this.writerStats.statements++;
        return linked.results;
      }
      // Another writer moved the head since this one read it: reload and link again.
      this.known = undefined;
      this.writerStats.headMoved++;
    }
    return this.appendLocked(items, ingestedAt);
  }

  /** The locked path: the head row held FOR UPDATE, stored ids read, one transaction. */
  private async appendLocked(
    items: readonly { readonly entry: AuditEntry; readonly source: string }[],
    ingestedAt: number,
  ): Promise<AppendResult[]> {
    this.writerStats.lockedFallbacks++;
    this.known = undefined;
    return this.db.transaction().execute((tx) => appendEntries(tx, items, ingestedAt));
  }

  /** Runs APPEND_SQL; the number of rows inserted (0 when the head was not `from` any more). */
  private async insertGuarded(from: ChainHead, linked: LinkedBatch): Promise<number> {
    const columns: unknown[][] = ARRAY_COLUMNS.map(() => new Array<unknown>(linked.rows.length));
    for (const [r, row] of linked.rows.entries()) {
      const values = row as unknown as Record<string, unknown>;
      for (const [c, [name]] of ARRAY_COLUMNS.entries())
        columns[c]![r] = name === 'time' ? (values.time as Date).toISOString() : values[name];
    }
    const result = await this.db.executeQuery<{ n: number }>(
      CompiledQuery.raw(APPEND_SQL, [
        linked.head.seq,
        linked.head.hash,
        from.seq,
        from.hash,
        linked.ingestedAt,
        ...columns,
      ]),
    );
    return Number(result.rows[0]?.n ?? 0);
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
