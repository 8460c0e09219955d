import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(__dirname, '..');

/** The files a module reaches through relative imports (the edge's own sources), transitively. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const base = resolve(dirname(file), m[1]!);
      const target = [`${base}.ts`, join(base, 'index.ts')].find((p) => existsSync(p));
      if (target !== undefined) queue.push(target);
    }
  }
  return seen;
}

describe('the production edge composes no measurement mode', () => {
  it('main.ts reaches nothing under modes/ (baselines and ablations are the benchmark root’s)', () => {
    const files = [...reachable(join(SRC, 'main.ts'))].map((f) => relative(SRC, f));
    expect(files).toEqual(expect.arrayContaining(['main.ts', 'edge.ts', 'config.ts']));
    expect(files.filter((f) => f.startsWith('modes/'))).toEqual([]);
  });

  it('the production config names no mode or ablation parser', () => {
    const config = readFileSync(join(SRC, 'config.ts'), 'utf8');
    expect(config).not.toMatch(/parseAblations|EDGE_MODES|parseEdgeMode/);
  });
});
