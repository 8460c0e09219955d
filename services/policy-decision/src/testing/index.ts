export * from './memory-grant-source';
export * from './fixture-inputs';
export * from './wire-requests';
