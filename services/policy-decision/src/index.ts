export * from './policy-decision';
export * from './policy-cache';
export * from './grant-source';
export * from './decision.service';
export * from './config';
