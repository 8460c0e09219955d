// One jest run covers every package; @hcp/* imports resolve to sources so tests never need a build.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/services', '<rootDir>/bench', '<rootDir>/test'].filter((p) =>
    require('node:fs').existsSync(p.replace('<rootDir>', __dirname)),
  ),
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['@swc/jest', JSON.parse(require('node:fs').readFileSync(__dirname + '/.swcrc', 'utf8'))] },
  moduleNameMapper: {
    '^@hcp/([a-z-]+)/testing$': '<rootDir>/libs/$1/src/testing/index.ts',
    '^@hcp/([a-z-]+)$': '<rootDir>/libs/$1/src/index.ts',
  },
  testTimeout: 30000,
};
