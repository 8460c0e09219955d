import { lstat, realpath, stat } from 'node:fs/promises';

/**
 * The three filesystem calls path canonicalisation needs. Injected so the
 * canonicaliser can run against a provider's view of the filesystem (or a
 * fake in tests); failures must reject with a Node-style `code` (ENOENT, ...).
 */
export interface PathFs {
  realpath(p: string): Promise<string>;
  lstat(p: string): Promise<{ isSymbolicLink(): boolean }>;
  stat(p: string): Promise<{ isDirectory(): boolean }>;
}

/** The local filesystem through node:fs/promises (native realpath(3)). */
export const nodePathFs: PathFs = {
  realpath: (p) => realpath(p),
  lstat: (p) => lstat(p),
  stat: (p) => stat(p),
};

/** The errno-style code of a rejected fs call, if it has one. */
export function fsErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
