// Type-checks every package including its specs (the build configs exclude specs).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const dirs = ['libs', 'services', 'apps']
  .filter((d) => existsSync(d))
  .flatMap((d) => readdirSync(d).map((p) => `${d}/${p}`))
  .concat(['bench', 'test'])
  .filter((d) => existsSync(`${d}/tsconfig.json`));
let failed = false;
for (const dir of dirs) {
  try {
    execFileSync('tsc', ['-p', `${dir}/tsconfig.json`], { stdio: 'inherit' });
  } catch {
    failed = true;
    console.error(`typecheck failed: ${dir}`);
  }
}
process.exit(failed ? 1 : 0);
