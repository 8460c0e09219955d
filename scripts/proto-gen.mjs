#!/usr/bin/env node
// Regenerates libs/proto/src/generated from proto/ (`pnpm proto:gen`), or with
// --check verifies that the committed generated code is exactly what proto/
// produces (`pnpm proto:check`), so CI fails when someone edits a .proto file
// without regenerating, or edits generated code by hand.
//
// Both modes generate into a temporary folder first, so a failed `buf
// generate` never leaves a half-written libs/proto/src/generated behind.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_REL = path.join('libs', 'proto', 'src', 'generated');
const TARGET = path.join(ROOT, OUT_REL);
const HEADER = '// Code generated from proto/ by scripts/proto-gen.mjs. DO NOT EDIT.\n';
const BUF = path.join(
  ROOT,
  'node_modules',
  '.bin',
  process.platform === 'win32' ? 'buf.cmd' : 'buf',
);

/** Every file below `dir`, as sorted forward-slash paths relative to it; empty when `dir` is absent. */
function listFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else out.push(child);
    }
  };
  walk('');
  return out.sort();
}

/** Runs `buf generate` into a fresh temp folder and returns the folder holding the generated tree. */
function generate(tmp) {
  // -o re-roots buf.gen.yaml's `out` below tmp: tmp/libs/proto/src/generated.
  const result = spawnSync(BUF, ['generate', '--output', tmp], { cwd: ROOT, stdio: 'inherit' });
  if (result.error) throw new Error(`cannot run ${BUF}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`buf generate failed with exit code ${String(result.status)}`);
  }
  const generated = path.join(tmp, OUT_REL);
  for (const rel of listFiles(generated)) {
    if (!rel.endsWith('.ts')) continue;
    const file = path.join(generated, rel);
    const text = fs.readFileSync(file, 'utf8');
    // ts-proto writes its own "DO NOT EDIT" header; add ours only if a future version stops.
    if (!text.split('\n', 5).some((line) => line.includes('DO NOT EDIT'))) {
      fs.writeFileSync(file, HEADER + text);
    }
  }
  return generated;
}

/** Lists every file that is missing, extra or different in `actualDir` compared to `expectedDir`. */
function diff(expectedDir, actualDir) {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const problems = [];
  for (const rel of expected) {
    if (!actual.has(rel)) {
      problems.push(`missing:   ${rel}`);
      continue;
    }
    actual.delete(rel);
    const a = fs.readFileSync(path.join(expectedDir, rel));
    const b = fs.readFileSync(path.join(actualDir, rel));
    if (!a.equals(b)) problems.push(`differs:   ${rel}`);
  }
  for (const rel of [...actual].sort()) problems.push(`extra:     ${rel}`);
  return problems;
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: node scripts/proto-gen.mjs [--check]  (unknown: ${unknown.join(' ')})`);
    return 2;
  }
  const check = args.includes('--check');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hcp-proto-gen-'));
  try {
    const generated = generate(tmp);
    if (check) {
      const problems = diff(generated, TARGET);
      if (problems.length > 0) {
        console.error(`${OUT_REL} is out of date with proto/; run \`pnpm proto:gen\`:`);
        for (const p of problems) console.error(`  ${p}`);
        return 1;
      }
      console.log(`${OUT_REL} is up to date (${listFiles(generated).length} files).`);
      return 0;
    }
    fs.rmSync(TARGET, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(TARGET), { recursive: true });
    fs.cpSync(generated, TARGET, { recursive: true });
    console.log(`generated ${listFiles(TARGET).length} files into ${OUT_REL}`);
    return 0;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
