export * from './embedded';
export * from './seed';
