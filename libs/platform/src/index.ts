export * from './config/config';
export * from './logging/logger';
export * from './db/database';
export * from './bus/event-bus';
export * from './bus/in-process-bus';
export * from './grpc/errors';
