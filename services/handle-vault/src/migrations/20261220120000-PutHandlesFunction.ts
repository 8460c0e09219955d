import { sql, type Kysely } from 'kysely';

// ADR 0005 §1: a Put (or a group of concurrent Puts) is one call of this function, one round
// trip, instead of BEGIN, lock, SUM, INSERT, COMMIT. Runs unchanged on PostgreSQL and PGlite.
//
// The arrays are parallel, one element per Put, in the order the caller wants them checked.
// Ciphertexts travel as one bytea (cut by p_ciphertext_lengths) so both drivers send them as
// a single binary value; a bytea[] would go as hex text, twice the bytes.
//
// Semantics are those of the five-statement transaction it replaces:
// - the lock is the same transaction-scoped advisory lock on `hcp.vault:<principal>` (so an
//   older replica's Put and this one still serialise), taken for every principal of the
//   group before any read, in the order of the lock keys: two groups never wait on each
//   other in a cycle, even when two principals' keys collide;
// - the function is VOLATILE, so under READ COMMITTED each statement in it takes a fresh
//   snapshot, after the locks: the sum sees every Put committed before the lock was granted,
//   and the rows this call inserted for earlier Puts of the group (the running total);
// - "live" is `expires_at > now`, where now is the Put's created_at (the service's clock);
// - a Put over the quota is skipped alone (stored = false, with the live bytes it was
//   checked against); the service turns that into PAYLOAD_TOO_LARGE. Any error aborts the
//   whole call: nothing of the group is stored.

/** Creates handle_vault_put. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function handle_vault_put(
      p_ids text[],
      p_owners text[],
      p_capabilities text[],
      p_labels text[],
      p_created_ms bigint[],
      p_expires_ms bigint[],
      p_sizes integer[],
      p_key_ids text[],
      p_ivs bytea[],
      p_auth_tags bytea[],
      p_ciphertexts bytea,
      p_ciphertext_lengths integer[],
      p_max_principal_bytes bigint
    ) returns table (put_index integer, used_bytes bigint, stored boolean)
    language plpgsql volatile as $$
    declare
      lock_key bigint;
      put_at timestamptz;
      used bigint;
      cut integer := 0;
      n integer := coalesce(array_length(p_ids, 1), 0);
    begin
      if n <> any (array[
           coalesce(array_length(p_owners, 1), 0), coalesce(array_length(p_capabilities, 1), 0),
           coalesce(array_length(p_labels, 1), 0), coalesce(array_length(p_created_ms, 1), 0),
           coalesce(array_length(p_expires_ms, 1), 0), coalesce(array_length(p_sizes, 1), 0),
           coalesce(array_length(p_key_ids, 1), 0), coalesce(array_length(p_ivs, 1), 0),
           coalesce(array_length(p_auth_tags, 1), 0),
           coalesce(array_length(p_ciphertext_lengths, 1), 0)]) then
        raise exception 'handle_vault_put: the arrays differ in length'
          using errcode = 'invalid_parameter_value';
      end if;
      for lock_key in
        select distinct hashtextextended('hcp.vault:' || o, 0) from unnest(p_owners) as o order by 1
      loop
        perform pg_advisory_xact_lock(lock_key);
      end loop;
      for i in 1 .. n loop
        put_at := timestamptz 'epoch' + p_created_ms[i] * interval '1 millisecond';
        select coalesce(sum(h.size_bytes), 0) into used
          from handles h
          where h.owner_principal_id = p_owners[i] and h.expires_at > put_at;
        put_index := i;
        used_bytes := used;
        stored := used + p_sizes[i] <= p_max_principal_bytes;
        if stored then
          insert into handles (id, owner_principal_id, producing_capability, labels, created_at,
                               expires_at, size_bytes, key_id, iv, ciphertext, auth_tag)
          values (p_ids[i], p_owners[i], p_capabilities[i], p_labels[i]::jsonb, put_at,
                  timestamptz 'epoch' + p_expires_ms[i] * interval '1 millisecond',
                  p_sizes[i], p_key_ids[i], p_ivs[i],
                  substring(p_ciphertexts from cut + 1 for p_ciphertext_lengths[i]),
                  p_auth_tags[i]);
        end if;
        cut := cut + p_ciphertext_lengths[i];
        return next;
      end loop;
    end
    $$`.execute(db);
}

/** Drops the function (development only). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop function if exists handle_vault_put(text[], text[], text[], text[], bigint[], bigint[],
      integer[], text[], bytea[], bytea[], bytea, integer[], bigint)`.execute(db);
}
