export * from './ablations';
export * from './request';
export * from './argument-constraints';
export * from './grant-matcher';
export * from './engine';
export * from './audit';
export * from './refusals';
