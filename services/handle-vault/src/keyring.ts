import { inspect } from 'node:util';
import { ConfigError } from '@hcp/platform';

/** The variable listing every key, `kid1:<base64 32 bytes>,kid2:...`. */
export const KEYS_VARIABLE = 'HCP_VAULT_KEYS';
/** The variable naming the key new rows are sealed with. */
export const ACTIVE_KEY_VARIABLE = 'HCP_VAULT_ACTIVE_KEY';

/** AES-256 needs exactly this many key bytes. */
export const KEY_BYTES = 32;

// A key id is stored in every row and shown in logs, so it is short and plain.
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
// Strict standard base64 (Buffer.from(..., 'base64') would silently skip junk characters).
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type Problem = { variable: string; message: string };

/**
 * The payload keys: every key a row may be sealed under, and the one new rows
 * use. Rotation = add a key, switch the active id, run `rotateKeys`, then drop
 * the old key. Key bytes never leave this object except into the cipher: it
 * prints (JSON, util.inspect, logs) as its key ids only.
 */
export class VaultKeyring {
  private readonly keys: ReadonlyMap<string, Buffer>;

  private constructor(
    keys: ReadonlyMap<string, Buffer>,
    /** Id of the key new rows are sealed with. */
    readonly activeKeyId: string,
  ) {
    this.keys = keys;
  }

  /**
   * Parses `HCP_VAULT_KEYS` / `HCP_VAULT_ACTIVE_KEY`. Throws ConfigError naming
   * the variable for a malformed entry, a duplicate id, a key that is not
   * exactly 32 bytes, or an active id not in the list; never echoes key bytes.
   */
  static parse(keysText: string, activeKeyId: string): VaultKeyring {
    const problems = keyringProblems(keysText, activeKeyId);
    if (problems.length > 0) throw new ConfigError(problems);
    return new VaultKeyring(parseEntries(keysText).keys, activeKeyId);
  }

  /** A keyring from raw key bytes (embedded composition root, tests); same checks as `parse`. */
  static of(
    keys: Readonly<Record<string, Uint8Array>> | ReadonlyMap<string, Uint8Array>,
    activeKeyId: string,
  ): VaultKeyring {
    const entries: [string, Uint8Array][] = isMap(keys)
      ? [...keys.entries()]
      : Object.entries(keys);
    const map = new Map<string, Buffer>();
    const problems: Problem[] = [];
    for (const [id, bytes] of entries) {
      const p = keyProblem(id, bytes.length);
      if (p !== undefined) problems.push({ variable: KEYS_VARIABLE, message: p });
      // A copy, so a caller zeroing or reusing its buffer cannot change the keyring.
      map.set(id, Buffer.from(bytes));
    }
    if (map.size === 0)
      problems.push({ variable: KEYS_VARIABLE, message: 'at least one key is required' });
    problems.push(...activeProblems(new Set(map.keys()), activeKeyId));
    if (problems.length > 0) throw new ConfigError(problems);
    return new VaultKeyring(map, activeKeyId);
  }

  /** The key bytes for a row's key id; undefined when this keyring lacks it. */
  key(id: string): Buffer | undefined {
    return this.keys.get(id);
  }

  /** The active key's bytes. */
  activeKey(): Buffer {
    const key = this.keys.get(this.activeKeyId);
    if (key === undefined) throw new Error('active key missing from keyring');
    return key;
  }

  has(id: string): boolean {
    return this.keys.has(id);
  }

  /** Every key id, in configuration order. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  toJSON(): { activeKeyId: string; keyIds: string[] } {
    return { activeKeyId: this.activeKeyId, keyIds: this.keyIds };
  }

  [inspect.custom](): string {
    return `VaultKeyring(active=${this.activeKeyId}, keys=[${this.keyIds.join(', ')}])`;
  }
}

function isMap(
  keys: Readonly<Record<string, Uint8Array>> | ReadonlyMap<string, Uint8Array>,
): keys is ReadonlyMap<string, Uint8Array> {
  return keys instanceof Map;
}

/** Every problem with the two variables, for a config schema to report alongside the others. */
export function keyringProblems(keysText: string, activeKeyId: string): Problem[] {
  const { named, problems } = parseEntries(keysText);
  return [...problems, ...activeProblems(named, activeKeyId)];
}

/** The valid keys, every id named (valid or not, so a bad key is not also reported as a missing active one), and the problems. */
function parseEntries(text: string): {
  keys: Map<string, Buffer>;
  named: Set<string>;
  problems: Problem[];
} {
  const keys = new Map<string, Buffer>();
  const named = new Set<string>();
  const problems: Problem[] = [];
  const bad = (message: string) => problems.push({ variable: KEYS_VARIABLE, message });
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) bad('at least one key is required (kid:<base64 of 32 bytes>)');
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      bad(`entry ${i + 1} must be kid:<base64 of 32 bytes>`);
      return;
    }
    const id = entry.slice(0, colon);
    named.add(id);
    const encoded = entry.slice(colon + 1);
    if (!BASE64.test(encoded) || encoded === '') {
      bad(`key ${describeId(id)} is not standard base64`);
      return;
    }
    const bytes = Buffer.from(encoded, 'base64');
    const p = keyProblem(id, bytes.length);
    if (p !== undefined) bad(p);
    else if (keys.has(id)) bad(`key id ${id} appears twice`);
    else keys.set(id, bytes);
  });
  return { keys, named, problems };
}

function keyProblem(id: string, length: number): string | undefined {
  if (!KEY_ID.test(id)) return `key id ${describeId(id)} must be 1-64 of A-Z a-z 0-9 _ . -`;
  if (length !== KEY_BYTES)
    return `key ${id} is ${length} bytes; AES-256 needs exactly ${KEY_BYTES}`;
  return undefined;
}

function activeProblems(named: ReadonlySet<string>, activeKeyId: string): Problem[] {
  if (activeKeyId === '')
    return [{ variable: ACTIVE_KEY_VARIABLE, message: 'required: the id of the key new rows use' }];
  if (!named.has(activeKeyId))
    return [
      { variable: ACTIVE_KEY_VARIABLE, message: `${activeKeyId} is not a key in ${KEYS_VARIABLE}` },
    ];
  return [];
}

// An id is at worst a typo of configuration, never key material, but keep it bounded in messages.
function describeId(id: string): string {
  return JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}...` : id);
}
