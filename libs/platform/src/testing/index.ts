export * from './bus-conformance';
export * from './db-conformance';
export * from './fresh-database';
export * from './integration';
export * from './recording-audit';
export * from './test-clock';
