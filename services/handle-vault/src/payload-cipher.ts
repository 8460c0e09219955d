import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { VaultKeyring } from './keyring';

/** AES-GCM's recommended nonce size: 96 bits, random per row. */
export const IV_BYTES = 12;
/** The full 128-bit GCM tag; shorter tags weaken forgery resistance. */
export const TAG_BYTES = 16;

/** A payload as it rests in the database. */
export interface SealedPayload {
  readonly keyId: string;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly authTag: Buffer;
}

/** The row a payload belongs to; bound into the ciphertext as additional authenticated data. */
export interface PayloadBinding {
  readonly handleId: string;
  readonly ownerPrincipalId: string;
}

/**
 * The payload could not be authenticated: ciphertext, IV or tag altered, or
 * the row moved to another id or owner (the binding no longer matches the AAD).
 */
export class PayloadUnauthenticatedError extends Error {
  override readonly name = 'PayloadUnauthenticatedError';
}

/** The row is sealed under a key id this keyring does not hold (e.g. removed before rotateKeys ran). */
export class PayloadKeyUnavailableError extends Error {
  override readonly name = 'PayloadKeyUnavailableError';
  constructor(readonly keyId: string) {
    super(`payload is sealed under key ${keyId}, which this vault's keyring does not hold`);
  }
}

/**
 * AES-256-GCM over handle payloads. The AAD is (format version, handle id,
 * owner) in an unambiguous encoding, so a row copied to another id or owner
 * fails to open rather than handing one principal's data to another (I4).
 */
export class PayloadCipher {
  constructor(private readonly keyring: VaultKeyring) {}

  /** Seals under the active key with a fresh random IV. */
  seal(binding: PayloadBinding, plaintext: Uint8Array): SealedPayload {
    const keyId = this.keyring.activeKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keyring.activeKey(), iv, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(aadOf(binding));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { keyId, iv, ciphertext, authTag: cipher.getAuthTag() };
  }

  /** Opens with the row's own key id; throws the typed errors above, never returns unauthenticated bytes. */
  open(binding: PayloadBinding, sealed: SealedPayload): Buffer {
    const key = this.keyring.key(sealed.keyId);
    if (key === undefined) throw new PayloadKeyUnavailableError(sealed.keyId);
    if (sealed.iv.length !== IV_BYTES || sealed.authTag.length !== TAG_BYTES)
      throw new PayloadUnauthenticatedError('IV or tag has the wrong length');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(aadOf(binding));
      decipher.setAuthTag(sealed.authTag);
      return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
    } catch {
      // node:crypto throws a generic "Unsupported state or unable to authenticate data".
      throw new PayloadUnauthenticatedError('payload failed authentication');
    }
  }

  /** Re-seals under the active key (key rotation); undefined when the row already uses it. */
  reseal(binding: PayloadBinding, sealed: SealedPayload): SealedPayload | undefined {
    if (sealed.keyId === this.keyring.activeKeyId) return undefined;
    return this.seal(binding, this.open(binding, sealed));
  }
}

/** Version-tagged JSON array: no separator a handle id or principal id could forge. */
function aadOf(binding: PayloadBinding): Buffer {
  return Buffer.from(
    JSON.stringify(['hcp.vault.payload.v1', binding.handleId, binding.ownerPrincipalId]),
    'utf8',
  );
}
