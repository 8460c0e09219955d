// One jest run covers every package; @hcp/* imports resolve to sources so tests never need a build.
const { existsSync, readFileSync } = require('node:fs'); // eslint-disable-line @typescript-eslint/no-require-imports
const { join } = require('node:path'); // eslint-disable-line @typescript-eslint/no-require-imports

const swc = JSON.parse(readFileSync(join(__dirname, '.swcrc'), 'utf8'));

/** Dependencies whose CommonJS build uses dynamic import() (PGlite; the OTLP exporters). */
const DYNAMIC_IMPORT_PACKAGES = ['@electric-sql/pglite', '@opentelemetry/otlp-exporter-base'];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['libs', 'services', 'apps', 'bench', 'test']
    .filter((p) => existsSync(join(__dirname, p)))
    .map((p) => `<rootDir>/${p}`),
  testMatch: ['**/*.spec.ts'],
  // test/integration needs real servers: jest -c jest.integration.config.js (pnpm test:integration).
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '<rootDir>/test/integration/'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', swc],
    // These packages' CommonJS builds load node modules with `import()`, which jest's vm
    // refuses without --experimental-vm-modules; compiling them turns those into require().
    [`/node_modules/(${DYNAMIC_IMPORT_PACKAGES.join('|')})/dist/.+\\.cjs$`]: [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: [`/node_modules/(?!.*(${DYNAMIC_IMPORT_PACKAGES.join('|')})/dist/)`],
  moduleNameMapper: {
    '^@hcp/(grant-store|policy-decision|handle-vault|audit-log|edge)/testing$':
      '<rootDir>/services/$1/src/testing/index.ts',
    '^@hcp/([a-z-]+)/testing$': '<rootDir>/libs/$1/src/testing/index.ts',
    '^@hcp/(grant-store|policy-decision|handle-vault|audit-log|edge)$':
      '<rootDir>/services/$1/src/index.ts',
    '^@hcp/embedded$': '<rootDir>/apps/embedded/src/index.ts',
    // Benchmark modules shared with the suites (the attack world), by path below bench/src.
    '^@hcp/bench/(.+)$': '<rootDir>/bench/src/$1',
    '^@hcp/([a-z-]+)$': '<rootDir>/libs/$1/src/index.ts',
  },
  testTimeout: 30000,
};
