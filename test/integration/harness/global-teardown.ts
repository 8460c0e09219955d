import { rmSync } from 'node:fs';
import { OWNED_DIR_ENV, servers } from './servers';

/** Stops the servers global-setup started (never ones it was given) and removes their state. */
export default function globalTeardown(): void {
  const dir = process.env[OWNED_DIR_ENV];
  if (!dir) return;
  servers('stop', dir);
  rmSync(dir, { recursive: true, force: true });
  delete process.env[OWNED_DIR_ENV];
}
