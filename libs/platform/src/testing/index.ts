export * from './bus-conformance';
export * from './db-conformance';
export * from './integration';
