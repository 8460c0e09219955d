import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

/**
 * Comments say why the code is as it is. A tracker number says nothing to the next reader and
 * goes stale when the tracker moves, so no comment in the code cites one ("issue" plus a number,
 * or a number after "#"). Comments are found by the TypeScript parser, so strings and regular
 * expressions that happen to contain such text (colours, entities) are not comments.
 */

const ROOT = join(__dirname, '..', '..');
const TREES = ['libs', 'services', 'apps', 'bench', 'test', 'scripts', 'deploy'];
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', '.turbo']);
const SCRIPT = /\.(ts|mts|cts|js|mjs|cjs)$/;
const SHELL = /\.sh$/;
const CITATION = /\bissues? #?\d+|(?:^|[^&\w])#\d+\b/i;

function files(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (SKIP_DIRS.has(name)) continue;
    const path = join(dir, name);
    let entries: string[] | undefined;
    try {
      entries = readdirSync(path);
    } catch {
      entries = undefined;
    }
    if (entries !== undefined) files(path, out);
    else if (SCRIPT.test(name) || SHELL.test(name)) out.push(path);
  }
  return out;
}

/** Every comment of a script file with the line it starts on, as the parser sees them. */
function scriptComments(path: string, text: string): { line: number; text: string }[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, false);
  const seen = new Set<number>();
  const found: { line: number; text: string }[] = [];
  const collect = (ranges: readonly ts.CommentRange[] | undefined) => {
    for (const r of ranges ?? []) {
      if (seen.has(r.pos)) continue;
      seen.add(r.pos);
      found.push({
        line: source.getLineAndCharacterOfPosition(r.pos).line + 1,
        text: text.slice(r.pos, r.end),
      });
    }
  };
  const visit = (node: ts.Node) => {
    collect(ts.getLeadingCommentRanges(text, node.getFullStart()));
    collect(ts.getTrailingCommentRanges(text, node.getEnd()));
    node.getChildren(source).forEach(visit);
  };
  visit(source);
  return found;
}

/** Shell comments: from a `#` at the start of a line or after a blank, outside quotes. */
function shellComments(text: string): { line: number; text: string }[] {
  const found: { line: number; text: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (i === 0 && line.startsWith('#!')) return;
    let quote: string | undefined;
    for (let c = 0; c < line.length; c++) {
      const ch = line[c]!;
      if (quote !== undefined) {
        if (ch === quote) quote = undefined;
      } else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '#' && (c === 0 || /\s/.test(line[c - 1]!))) {
        found.push({ line: i + 1, text: line.slice(c) });
        return;
      }
    }
  });
  return found;
}

describe('comments', () => {
  it('cite no issue numbers', () => {
    const offending: string[] = [];
    for (const tree of TREES)
      for (const path of files(join(ROOT, tree))) {
        const text = readFileSync(path, 'utf8');
        const comments = SHELL.test(path) ? shellComments(text) : scriptComments(path, text);
        for (const c of comments)
          c.text.split('\n').forEach((line, i) => {
            if (CITATION.test(line))
              offending.push(`${relative(ROOT, path)}:${c.line + i}: ${line.trim()}`);
          });
      }
    expect(offending).toEqual([]);
  });

  it('the check sees comments and only comments', () => {
    const sample = [
      '// see issue 12',
      "const colour = '#1f77b4'; /* fine */",
      'const entity = "a &#38; b";',
      '/** fixes #7 */',
      'const re = /issue 3/;',
    ].join('\n');
    const hits = scriptComments('sample.ts', sample).filter((c) => CITATION.test(c.text));
    expect(hits.map((c) => c.line)).toEqual([1, 4]);
    expect(
      shellComments('#!/bin/sh\necho "#5" # after issue 9\n# a plain comment\n').filter((c) =>
        CITATION.test(c.text),
      ),
    ).toEqual([{ line: 2, text: '# after issue 9' }]);
  });
});
