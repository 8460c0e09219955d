// The integration tier: suites in test/integration against a real PostgreSQL and NATS
// JetStream that the global setup starts with deploy/local/servers.sh. Serial, because
// the suites share those servers and some restart NATS.
const base = require('./jest.config.js'); // eslint-disable-line @typescript-eslint/no-require-imports

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/test/integration'],
  testMatch: ['**/*.int.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  maxWorkers: 1,
  globalSetup: '<rootDir>/test/integration/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/integration/harness/global-teardown.ts',
  testTimeout: 60000,
};
