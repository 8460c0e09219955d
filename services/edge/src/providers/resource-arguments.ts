import { HcpError } from '@hcp/core';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

/**
 * Last words of an argument name that make it look like a path or a URL (`path`, `file_path`,
 * `sourceDir`, `urls`...). Names are split at `_`, `-` and lower-to-upper case changes; only the
 * last word counts, so `pattern` or `excludePatterns` are not caught.
 */
const RESOURCE_WORDS: ReadonlySet<string> = new Set([
  'path',
  'paths',
  'file',
  'files',
  'filename',
  'filenames',
  'filepath',
  'dir',
  'dirs',
  'directory',
  'directories',
  'folder',
  'folders',
  'root',
  'roots',
  'url',
  'urls',
  'uri',
  'uris',
  'href',
  'link',
  'links',
]);

/** Whole names that name a place without a telling last word (move_file's source and destination). */
const RESOURCE_NAMES: ReadonlySet<string> = new Set([
  'source',
  'destination',
  'src',
  'dest',
  'dst',
  'target',
  'location',
  'endpoint',
]);

/** JSON Schema string formats that make an argument a URL whatever its name. */
const RESOURCE_FORMATS: ReadonlySet<string> = new Set(['uri', 'uri-reference', 'iri', 'url']);

type SchemaNode = Readonly<Record<string, unknown>>;

const isNode = (v: unknown): v is SchemaNode =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function wordsOf(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[_\-\s.]+/)
    .filter((w) => w !== '');
}

/** The types a schema node admits (absent `type`: any). */
function typesOf(node: SchemaNode): readonly string[] | undefined {
  const t = node.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  return undefined;
}

/** A string, or an array of strings: the shapes a path or URL argument can take. */
function stringish(node: SchemaNode): { readonly ok: boolean; readonly format?: unknown } {
  const types = typesOf(node);
  if (types === undefined || types.includes('string')) return { ok: true, format: node.format };
  if (types.includes('array')) {
    const items = isNode(node.items) ? node.items : {};
    const itemTypes = typesOf(items);
    return { ok: itemTypes === undefined || itemTypes.includes('string'), format: items.format };
  }
  return { ok: false };
}

/**
 * The arguments of a listed tool that look like a path or URL: a string (or array of strings)
 * property whose name's last word is a path/URL word, whose whole name is a place word (source,
 * destination, target...), or whose `format` is uri/uri-reference/iri/url. Only names and formats
 * are read, never descriptions (they are upstream prose, I1).
 */
export function pathOrUrlArguments(tool: Pick<Tool, 'inputSchema'>): string[] {
  const properties = isNode(tool.inputSchema.properties) ? tool.inputSchema.properties : {};
  const found: string[] = [];
  for (const [name, node] of Object.entries(properties)) {
    if (!isNode(node)) continue;
    const shape = stringish(node);
    if (!shape.ok) continue;
    const words = wordsOf(name);
    const last = words[words.length - 1] ?? '';
    if (
      RESOURCE_WORDS.has(last) ||
      RESOURCE_NAMES.has(words.join('_')) ||
      (typeof shape.format === 'string' && RESOURCE_FORMATS.has(shape.format))
    )
      found.push(name);
  }
  return found.sort();
}

/** What a manifest entry says about its tool's arguments. */
export interface DeclaredArguments {
  readonly tool: string;
  readonly resourceArguments: readonly { readonly name: string }[];
  /** Arguments that look like a path or URL but are not one; the operator's explicit opt-out. */
  readonly nonResourceArguments?: readonly string[];
}

/**
 * Refuses a manifest entry that leaves a path- or URL-looking argument of its listed tool
 * undeclared: such an argument would reach the provider unchecked (I3). Throws HcpError
 * `INPUT_INVALID` naming provider, tool and argument; `nonResourceArguments` exempts a name.
 */
export function assertResourceArgumentsDeclared(
  providerId: string,
  declared: DeclaredArguments,
  listed: Pick<Tool, 'inputSchema'>,
): void {
  const covered = new Set([
    ...declared.resourceArguments.map((a) => a.name),
    ...(declared.nonResourceArguments ?? []),
  ]);
  const missing = pathOrUrlArguments(listed).filter((name) => !covered.has(name));
  if (missing.length === 0) return;
  const argument = missing[0] ?? '';
  throw new HcpError(
    'INPUT_INVALID',
    `provider ${providerId}: tool ${declared.tool}: argument ${JSON.stringify(argument.slice(0, 128))} ` +
      'looks like a path or URL but the manifest declares it neither in resourceArguments nor in ' +
      'nonResourceArguments',
    {
      field: 'capabilities',
      provider: providerId,
      tool: declared.tool,
      argument: argument.slice(0, 128),
      undeclared: missing.map((m) => m.slice(0, 128)).join(','),
    },
  );
}
