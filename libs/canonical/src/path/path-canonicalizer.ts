import path from 'node:path';
import type { ResourceFacts } from '@hcp/core';
import { hasControlChar, refusedFacts, resolvedFacts } from '../facts';
import type { RefusalStatus } from '../facts';
import { containingRoot, segmentsBelow } from './containment';
import { firstDeniedHiddenSegment, parseHiddenAllow } from './hidden-segments';
import { fsErrorCode, nodePathFs } from './path-fs';
import type { PathFs } from './path-fs';

/** Every rule the path canonicaliser can report; stable names the audit and tests key on. */
export const PATH_RULES = [
  'path.not_string',
  'path.empty',
  'path.too_long',
  'path.control_char',
  'path.bad_basename',
  'path.no_roots',
  'path.outside_roots',
  'path.hidden_config',
  'path.not_found',
  'path.dangling_link',
  'path.missing_parent',
  'path.not_directory',
  'path.link_loop',
  'path.access',
  'path.io_error',
] as const;

/** A path canonicaliser rule name. */
export type PathRule = (typeof PATH_RULES)[number];

/** What the tool will do with the path: a write may name a file that does not exist yet. */
export type PathIntent = 'read' | 'write';

/** Default bound on a raw path (Linux PATH_MAX). */
export const DEFAULT_MAX_PATH_LENGTH = 4096;

/** Configuration of one provider's filesystem view. */
export interface PathCanonicalizerOptions {
  /** Absolute directories the provider may touch; each is realpath'ed once at creation. Empty: deny all. */
  readonly roots: readonly string[];
  /** Refuse dot-segments below a root (`.env`, `.git/config`); default true. */
  readonly denyHidden?: boolean;
  /** Hidden names (`.well-known`) or root-relative subtrees (`.config/app`) exempt from denyHidden. */
  readonly hiddenAllow?: readonly string[];
  /** Filesystem to resolve against; default node:fs/promises. */
  readonly fs?: PathFs;
  /** Longest raw path accepted; default 4096. */
  readonly maxPathLength?: number;
}

/**
 * Turns a caller's path string into the real path the provider's filesystem
 * will open (I3), then checks it against the roots and the hidden-config rule.
 * Case handling follows the real filesystem: realpath returns the on-disk
 * name, so on a case-sensitive filesystem `/Data` is simply another path and
 * on a case-insensitive one realpath folds it to the stored spelling.
 * The answer is a point-in-time fact: a provider should still open without
 * following links where it can, since the tree may change after the check.
 */
export interface PathCanonicalizer {
  /** The real root directories, after symlink resolution. */
  readonly roots: readonly string[];
  /** Never throws; every refusal is a ResourceFacts with a rule from PATH_RULES. */
  canonicalize(raw: string, intent: PathIntent): Promise<ResourceFacts>;
}

type Step = { ok: true; real: string } | { ok: false; facts: ResourceFacts };

/**
 * Builds a path canonicaliser. Async because roots are realpath'ed up front;
 * rejects (fail fast at boot) when a root is relative, missing or not a directory.
 */
export async function createPathCanonicalizer(
  options: PathCanonicalizerOptions,
): Promise<PathCanonicalizer> {
  const fs = options.fs ?? nodePathFs;
  const denyHidden = options.denyHidden ?? true;
  const hiddenAllow = parseHiddenAllow(options.hiddenAllow ?? []);
  const maxLength = options.maxPathLength ?? DEFAULT_MAX_PATH_LENGTH;

  const roots: string[] = [];
  for (const root of options.roots) {
    if (!path.isAbsolute(root) || hasControlChar(root)) {
      throw new Error(`path root ${JSON.stringify(root)} must be an absolute path`);
    }
    const real = await fs.realpath(root);
    if (!(await fs.stat(real)).isDirectory()) {
      throw new Error(`path root ${JSON.stringify(root)} is not a directory`);
    }
    if (!roots.includes(real)) roots.push(real);
  }
  const firstRoot = roots[0];

  const refuse = (
    status: RefusalStatus,
    raw: string,
    rule: PathRule,
    detail: string,
    canonical?: string,
  ): ResourceFacts => refusedFacts(status, 'path', raw, rule, detail, canonical);

  /** Maps a failed realpath of `target` to the fact it means for this intent. */
  async function explainFailure(
    raw: string,
    target: string,
    error: unknown,
    missingRule: 'path.not_found' | 'path.missing_parent',
  ): Promise<ResourceFacts> {
    const code = fsErrorCode(error);
    switch (code ?? 'UNKNOWN') {
      case 'ENOENT': {
        const link = await fs.lstat(target).then(
          (s) => s.isSymbolicLink(),
          () => false,
        );
        return link
          ? refuse('unresolvable', raw, 'path.dangling_link', `${target} is a dangling symlink`)
          : refuse('unresolvable', raw, missingRule, `${target} does not exist`);
      }
      case 'ENOTDIR':
        return refuse(
          'unresolvable',
          raw,
          'path.not_directory',
          `a component of ${target} is not a directory`,
        );
      case 'ELOOP':
        return refuse(
          'unresolvable',
          raw,
          'path.link_loop',
          `too many symlinks resolving ${target}`,
        );
      case 'ENAMETOOLONG':
        return refuse(
          'invalid',
          raw,
          'path.too_long',
          `${target} exceeds the filesystem name limit`,
        );
      case 'EACCES':
      case 'EPERM':
        return refuse('unresolvable', raw, 'path.access', `permission denied resolving ${target}`);
      default:
        return refuse(
          'unresolvable',
          raw,
          'path.io_error',
          `resolving ${target} failed (${code ?? 'unknown error'})`,
        );
    }
  }

  async function realOf(
    raw: string,
    target: string,
    missingRule: 'path.not_found' | 'path.missing_parent',
  ): Promise<Step> {
    try {
      return { ok: true, real: await fs.realpath(target) };
    } catch (error: unknown) {
      return { ok: false, facts: await explainFailure(raw, target, error, missingRule) };
    }
  }

  /** Real path of a file a write would create: real parent + basename, the parent must be a directory. */
  async function realOfNewFile(raw: string, full: string): Promise<Step> {
    const base = path.basename(full);
    if (base === '' || base === '.' || base === '..') {
      return {
        ok: false,
        facts: refuse('invalid', raw, 'path.bad_basename', `cannot create ${JSON.stringify(base)}`),
      };
    }
    const parent = await realOf(raw, path.dirname(full), 'path.missing_parent');
    if (!parent.ok) return parent;
    const isDir = await fs.stat(parent.real).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      return {
        ok: false,
        facts: refuse(
          'unresolvable',
          raw,
          'path.missing_parent',
          `${parent.real} is not a directory`,
        ),
      };
    }
    const candidate = path.join(parent.real, base);
    // Re-check the final name under the real parent: `link/` with a trailing
    // slash hides a dangling link from lstat of the raw spelling.
    const isLink = await fs.lstat(candidate).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    if (isLink) {
      return {
        ok: false,
        facts: refuse(
          'unresolvable',
          raw,
          'path.dangling_link',
          `${candidate} is a dangling symlink`,
        ),
      };
    }
    return { ok: true, real: candidate };
  }

  // The contract is "never throws": an injected fs that misbehaves (throws
  // synchronously, rejects without a code) still yields a typed refusal.
  async function canonicalize(raw: string, intent: PathIntent): Promise<ResourceFacts> {
    try {
      return await canonicalizeUnguarded(raw, intent);
    } catch (error: unknown) {
      const why = error instanceof Error ? error.message : 'unknown error';
      return refusedFacts(
        'unresolvable',
        'path',
        typeof raw === 'string' ? raw : '',
        'path.io_error',
        why,
      );
    }
  }

  async function canonicalizeUnguarded(raw: string, intent: PathIntent): Promise<ResourceFacts> {
    if (typeof raw !== 'string') {
      return refusedFacts(
        'invalid',
        'path',
        '',
        'path.not_string',
        `expected a string, got ${typeof raw}`,
      );
    }
    if (raw.length === 0) return refuse('invalid', raw, 'path.empty', 'the path is empty');
    if (raw.length > maxLength) {
      return refuse(
        'invalid',
        raw,
        'path.too_long',
        `${raw.length} characters exceed the limit of ${maxLength}`,
      );
    }
    if (hasControlChar(raw)) {
      return refuse(
        'invalid',
        raw,
        'path.control_char',
        'the path contains a NUL or control character',
      );
    }
    if (firstRoot === undefined) {
      return refuse(
        'denied',
        raw,
        'path.no_roots',
        'no roots are configured, so every path is denied',
      );
    }

    // Joined without lexical normalisation: `link/..` must go where the
    // filesystem takes it, which realpath(3) does component by component.
    const full = path.isAbsolute(raw) ? raw : `${firstRoot}${path.sep}${raw}`;

    let step: Step;
    if (intent === 'read') {
      step = await realOf(raw, full, 'path.not_found');
    } else {
      step = await realOf(raw, full, 'path.not_found');
      if (!step.ok && step.facts.status !== 'resolved' && step.facts.rule === 'path.not_found') {
        step = await realOfNewFile(raw, full);
      }
    }
    if (!step.ok) return step.facts;
    const canonical = step.real;

    const root = containingRoot(roots, canonical);
    if (root === undefined) {
      return refuse(
        'denied',
        raw,
        'path.outside_roots',
        `${canonical} is outside every root`,
        canonical,
      );
    }
    if (denyHidden) {
      const hidden = firstDeniedHiddenSegment(segmentsBelow(root, canonical), hiddenAllow);
      if (hidden !== undefined) {
        return refuse(
          'denied',
          raw,
          'path.hidden_config',
          `${canonical} goes through hidden segment ${JSON.stringify(hidden)} below ${root}`,
          canonical,
        );
      }
    }
    return resolvedFacts({ kind: 'path', raw, canonical });
  }

  return { roots, canonicalize };
}
