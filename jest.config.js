// One jest run covers every package; @hcp/* imports resolve to sources so tests never need a build.
const { existsSync, readFileSync } = require('node:fs'); // eslint-disable-line @typescript-eslint/no-require-imports
const { join } = require('node:path'); // eslint-disable-line @typescript-eslint/no-require-imports

const swc = JSON.parse(readFileSync(join(__dirname, '.swcrc'), 'utf8'));

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['libs', 'services', 'apps', 'bench', 'test']
    .filter((p) => existsSync(join(__dirname, p)))
    .map((p) => `<rootDir>/${p}`),
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  moduleNameMapper: {
    '^@hcp/([a-z-]+)/testing$': '<rootDir>/libs/$1/src/testing/index.ts',
    '^@hcp/(grant-store|policy-decision)$': '<rootDir>/services/$1/src/index.ts',
    '^@hcp/([a-z-]+)$': '<rootDir>/libs/$1/src/index.ts',
  },
  testTimeout: 30000,
};
