/**
 * The hidden-config deny rule: dot-files and dot-directories below a root
 * (`.env`, `.ssh/id_rsa`, `.git/config`, `.aws/credentials`) hold credentials
 * far more often than data, so they are refused unless explicitly allowed.
 */
export interface HiddenAllowList {
  /** Single segment names allowed anywhere below a root, e.g. `.well-known`. */
  readonly names: ReadonlySet<string>;
  /** Root-relative subtrees allowed, e.g. `.config/app` (split into segments). */
  readonly subtrees: readonly (readonly string[])[];
}

/**
 * Parses the `hiddenAllow` option: an entry without `/` is a segment name, an
 * entry with `/` a root-relative subtree. Throws on entries that could widen
 * the rule by accident (empty, `.` or `..` segments).
 */
export function parseHiddenAllow(entries: readonly string[]): HiddenAllowList {
  const names = new Set<string>();
  const subtrees: string[][] = [];
  for (const entry of entries) {
    const segments = entry.split('/').filter((s) => s !== '');
    if (segments.length === 0 || segments.some((s) => s === '.' || s === '..')) {
      throw new Error(`hiddenAllow entry ${JSON.stringify(entry)} is not a name or relative path`);
    }
    if (segments.length === 1 && !entry.includes('/')) {
      names.add(segments[0] as string);
    } else {
      subtrees.push(segments);
    }
  }
  return { names, subtrees };
}

/** The first hidden segment not covered by the allow list, or undefined when none is hidden. */
export function firstDeniedHiddenSegment(
  segments: readonly string[],
  allow: HiddenAllowList,
): string | undefined {
  for (let i = 0; i < segments.length; i += 1) {
    const segment = segments[i] as string;
    if (!segment.startsWith('.')) continue;
    if (allow.names.has(segment)) continue;
    const covered = allow.subtrees.some(
      (tree) =>
        i < tree.length &&
        tree.length <= segments.length &&
        tree.every((part, j) => segments[j] === part),
    );
    if (!covered) return segment;
  }
  return undefined;
}
