export * from './reason-codes';
export * from './invariants';
export * from './types';
export * from './canonical-json';
export * from './ids';
export * from './errors';
export * from './refusal';
export * from './request';
