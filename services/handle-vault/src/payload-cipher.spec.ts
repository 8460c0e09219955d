import { randomBytes } from 'node:crypto';
import { VaultKeyring } from './keyring';
import {
  PayloadCipher,
  PayloadKeyUnavailableError,
  PayloadUnauthenticatedError,
  type SealedPayload,
} from './payload-cipher';

const keys = { old: randomBytes(32), new: randomBytes(32) };
const binding = { handleId: 'hdl_AAAAAAAAAAAAAAAAAAAAAA', ownerPrincipalId: 'agent-1' };
const plaintext = Buffer.from('{"rows":[1,2,3]}');

/** A copy of `sealed` with one byte of `field` flipped. */
function flip(sealed: SealedPayload, field: 'iv' | 'ciphertext' | 'authTag'): SealedPayload {
  const bytes = Buffer.from(sealed[field]);
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return { ...sealed, [field]: bytes };
}

describe('PayloadCipher (AES-256-GCM)', () => {
  const cipher = new PayloadCipher(VaultKeyring.of(keys, 'old'));

  it('round-trips under the active key with a fresh 96-bit IV and a 128-bit tag', () => {
    const a = cipher.seal(binding, plaintext);
    const b = cipher.seal(binding, plaintext);
    expect(a.keyId).toBe('old');
    expect(a.iv).toHaveLength(12);
    expect(a.authTag).toHaveLength(16);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    expect(a.ciphertext.includes(plaintext)).toBe(false);
    expect(cipher.open(binding, a)).toEqual(plaintext);
    expect(cipher.open(binding, cipher.seal(binding, Buffer.alloc(0)))).toEqual(Buffer.alloc(0));
  });

  it.each(['iv', 'ciphertext', 'authTag'] as const)('refuses a flipped bit in %s', (field) => {
    const sealed = cipher.seal(binding, plaintext);
    expect(() => cipher.open(binding, flip(sealed, field))).toThrow(PayloadUnauthenticatedError);
  });

  it('binds the handle id and the owner: a row moved to another id or owner does not open', () => {
    const sealed = cipher.seal(binding, plaintext);
    expect(() => cipher.open({ ...binding, ownerPrincipalId: 'agent-2' }, sealed)).toThrow(
      PayloadUnauthenticatedError,
    );
    expect(() =>
      cipher.open({ ...binding, handleId: 'hdl_BBBBBBBBBBBBBBBBBBBBBB' }, sealed),
    ).toThrow(PayloadUnauthenticatedError);
    // No separator games: ("a","b:c") and ("a:b","c") are different bindings.
    const odd = cipher.seal({ handleId: 'a', ownerPrincipalId: 'b","c' }, plaintext);
    expect(() => cipher.open({ handleId: 'a","b', ownerPrincipalId: 'c' }, odd)).toThrow(
      PayloadUnauthenticatedError,
    );
  });

  it('refuses wrong-length IV or tag and a key id relabelled to another key', () => {
    const sealed = cipher.seal(binding, plaintext);
    expect(() => cipher.open(binding, { ...sealed, iv: sealed.iv.subarray(0, 8) })).toThrow(
      PayloadUnauthenticatedError,
    );
    expect(() =>
      cipher.open(binding, { ...sealed, authTag: sealed.authTag.subarray(0, 4) }),
    ).toThrow(PayloadUnauthenticatedError);
    expect(() => cipher.open(binding, { ...sealed, keyId: 'new' })).toThrow(
      PayloadUnauthenticatedError,
    );
  });

  it('names a key the keyring lacks', () => {
    const sealed = cipher.seal(binding, plaintext);
    const without = new PayloadCipher(VaultKeyring.of({ new: keys.new }, 'new'));
    expect(() => without.open(binding, sealed)).toThrow(PayloadKeyUnavailableError);
    expect(() => without.open(binding, sealed)).toThrow(/key old/);
  });

  it('reseals under the active key, and leaves rows already under it alone', () => {
    const sealed = cipher.seal(binding, plaintext);
    const rotated = new PayloadCipher(VaultKeyring.of(keys, 'new'));
    const resealed = rotated.reseal(binding, sealed)!;
    expect(resealed.keyId).toBe('new');
    expect(rotated.open(binding, resealed)).toEqual(plaintext);
    expect(rotated.reseal(binding, resealed)).toBeUndefined();
    expect(
      new PayloadCipher(VaultKeyring.of({ new: keys.new }, 'new')).open(binding, resealed),
    ).toEqual(plaintext);
  });
});
