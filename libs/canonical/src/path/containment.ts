import path from 'node:path';

/**
 * True when `candidate` is `root` itself or lies below it on a path-segment
 * boundary (`/data/app` never admits `/data/app_evil`). Both must be absolute
 * real paths; a bare startsWith is exactly the bug this exists to avoid.
 */
export function isWithinRoot(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The segments of `candidate` below `root` (empty for the root itself); assumes containment. */
export function segmentsBelow(root: string, candidate: string): string[] {
  const rel = path.relative(root, candidate);
  return rel === '' ? [] : rel.split(path.sep);
}

/**
 * The deepest root containing `candidate` (nested roots: the most specific one
 * decides, so an explicit root inside a hidden directory works), or undefined.
 */
export function containingRoot(roots: readonly string[], candidate: string): string | undefined {
  let best: string | undefined;
  let bestDepth = Number.POSITIVE_INFINITY;
  for (const root of roots) {
    if (!isWithinRoot(root, candidate)) continue;
    const depth = segmentsBelow(root, candidate).length;
    if (depth < bestDepth) {
      best = root;
      bestDepth = depth;
    }
  }
  return best;
}
