export * from './ablations';
export * from './request';
export * from './grant-matcher';
export * from './engine';
export * from './audit';
