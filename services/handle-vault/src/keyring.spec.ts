import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError } from '@hcp/platform';
import { VaultKeyring } from './keyring';

const b64 = (n: number) => randomBytes(n).toString('base64');

/** The ConfigError `fn` throws. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err: unknown) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('VaultKeyring', () => {
  it('parses kid:base64 pairs and names the active key', () => {
    const k1 = b64(32);
    const k2 = b64(32);
    const ring = VaultKeyring.parse(`k1:${k1}, k2:${k2}`, 'k2');
    expect(ring.activeKeyId).toBe('k2');
    expect(ring.keyIds).toEqual(['k1', 'k2']);
    expect(ring.key('k1')).toEqual(Buffer.from(k1, 'base64'));
    expect(ring.activeKey()).toEqual(Buffer.from(k2, 'base64'));
    expect(ring.key('k3')).toBeUndefined();
  });

  it.each([
    [
      '31 bytes',
      `k1:${b64(31)}`,
      'k1',
      'HCP_VAULT_KEYS',
      /k1 is 31 bytes; AES-256 needs exactly 32/,
    ],
    ['33 bytes', `k1:${b64(33)}`, 'k1', 'HCP_VAULT_KEYS', /k1 is 33 bytes/],
    ['not base64', 'k1:not*base64!', 'k1', 'HCP_VAULT_KEYS', /key "k1" is not standard base64/],
    ['no id', b64(32), 'k1', 'HCP_VAULT_KEYS', /entry 1 must be kid:/],
    ['bad id', `k 1:${b64(32)}`, 'k 1', 'HCP_VAULT_KEYS', /key id "k 1" must be/],
    ['duplicate', `k1:${b64(32)},k1:${b64(32)}`, 'k1', 'HCP_VAULT_KEYS', /appears twice/],
    ['empty', '', 'k1', 'HCP_VAULT_KEYS', /at least one key/],
    ['unknown active', `k1:${b64(32)}`, 'k9', 'HCP_VAULT_ACTIVE_KEY', /k9 is not a key/],
    ['no active', `k1:${b64(32)}`, '', 'HCP_VAULT_ACTIVE_KEY', /required/],
  ])('refuses %s at boot, naming the variable', (_, keys, active, variable, message) => {
    const err = configError(() => VaultKeyring.parse(keys, active));
    expect(err.problems.map((p) => p.variable)).toContain(variable);
    expect(err.message).toMatch(message);
  });

  it('never echoes key material in errors', () => {
    const short = b64(16);
    const err = configError(() => VaultKeyring.parse(`k1:${short}`, 'k1'));
    expect(err.message).not.toContain(short);
  });

  it('builds from raw bytes with the same checks, and copies them', () => {
    const bytes = randomBytes(32);
    const ring = VaultKeyring.of({ a: bytes }, 'a');
    bytes.fill(0);
    expect(ring.activeKey().equals(Buffer.alloc(32))).toBe(false);
    expect(configError(() => VaultKeyring.of({ a: randomBytes(16) }, 'a')).problems).toEqual([
      { variable: 'HCP_VAULT_KEYS', message: 'key a is 16 bytes; AES-256 needs exactly 32' },
    ]);
    expect(configError(() => VaultKeyring.of(new Map(), 'a')).message).toMatch(/at least one key/);
  });

  it('prints key ids only (JSON, inspect, template strings)', () => {
    const key = randomBytes(32);
    const ring = VaultKeyring.of({ a: key, b: randomBytes(32) }, 'b');
    const shown = [JSON.stringify(ring), inspect(ring), inspect({ ring }, { depth: 5 })];
    for (const s of shown) {
      expect(s).not.toContain(key.toString('base64'));
      expect(s).not.toContain(key.toString('hex'));
      expect(s).toContain('b');
    }
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ activeKeyId: 'b', keyIds: ['a', 'b'] });
  });
});
