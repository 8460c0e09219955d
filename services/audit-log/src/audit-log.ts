import type { Kysely } from 'kysely';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import {
  createLogger,
  createTokenVerifier,
  migrateToLatest,
  NestJsonLogger,
  openDatabase,
  startGrpcService,
  type Database,
  type DatabaseConfig,
  type EventBus,
  type RunningGrpcService,
  type TokenVerifier,
  type TokenVerifierOptions,
} from '@hcp/platform';
import { audit } from '@hcp/proto';
import { AuditEntryRepository } from './audit-entry.repository';
import { AuditIngestService, type IngestStats } from './audit-ingest.service';
import { AuditHttpExceptionFilter } from './audit-log.http-exception-filter';
import { AuditLogGrpcModule, AuditLogHttpModule } from './audit-log.module';
import { AuditQueryService } from './audit-query.service';
import type { AuditDb } from './database';
import { AUDIT_LOG_MIGRATION_TABLE, auditLogMigrations } from './migrations';

/** The generated gRPC services audit-log serves, by full proto name. */
export const AUDIT_LOG_SERVICES = {
  'hcp.audit.v1.AuditLog': audit.AuditLogService,
} as const;

/** How to start audit-log in process: the embedded composition root, tests, and main.ts. */
export interface StartAuditLogOptions {
  /** A config to open (and close on `close()`), or an open database the caller owns. */
  readonly db: DatabaseConfig | Database<AuditDb>;
  /** The bus the audit stream lives on; stays the caller's. */
  readonly bus: EventBus;
  /** REST port; 0 picks a free one. */
  readonly httpPort: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** gRPC AuditLog port (0 picks a free one); absent or null: no gRPC side. */
  readonly grpcPort?: number | null;
  /** Verifies operator tokens: a verifier, or the options to create one. */
  readonly verifier: TokenVerifier | TokenVerifierOptions;
  /** Durable consumer name; default `audit-log`. */
  readonly durable?: string;
  /** Redelivery delay of an unacknowledged audit event; default 30 s. */
  readonly ackWaitMs?: number;
  /** Epoch millis for ingested_at; default Date.now. */
  readonly clock?: () => number;
  /** Graceful shutdown bound of the gRPC side. */
  readonly drainTimeoutMs?: number;
}

/** A running audit-log. */
export interface RunningAuditLog {
  readonly httpPort: number;
  /** `http://host:port` of the REST API. */
  readonly url: string;
  readonly grpcPort: number | null;
  /** `host:port` for createGrpcClient(audit.AuditLogClient, grpcUrl); null without a gRPC side. */
  readonly grpcUrl: string | null;
  /** The read side, for in-process callers (the embedded composition root, tests). */
  readonly query: AuditQueryService;
  /** Ingest counters since start. */
  readonly stats: Readonly<IngestStats>;
  /** Stops consuming (after the event in flight), closes the servers, and the database if it opened it. */
  close(): Promise<void>;
}

const log = createLogger('AuditLog');

/** Runs audit-log's migrations to the latest (idempotent). */
export function migrateAuditLog(db: Kysely<AuditDb>): Promise<string[]> {
  return migrateToLatest(
    db as unknown as Kysely<unknown>,
    auditLogMigrations,
    AUDIT_LOG_MIGRATION_TABLE,
  );
}

function isOpenDatabase(db: DatabaseConfig | Database<AuditDb>): db is Database<AuditDb> {
  return 'db' in db;
}

function isVerifier(v: TokenVerifier | TokenVerifierOptions): v is TokenVerifier {
  return typeof (v as Partial<TokenVerifier>).verify === 'function';
}

/** Migrates, serves the read API (REST, optionally gRPC), then starts consuming the audit stream. */
export async function startAuditLog(options: StartAuditLogOptions): Promise<RunningAuditLog> {
  const verifier = isVerifier(options.verifier)
    ? options.verifier
    : createTokenVerifier(options.verifier);
  const given = options.db;
  const owned = !isOpenDatabase(given);
  const database = isOpenDatabase(given) ? given : await openDatabase<AuditDb>(given);
  const host = options.host ?? '127.0.0.1';
  let http: NestExpressApplication | undefined;
  let grpc: RunningGrpcService | undefined;
  let ingest: AuditIngestService | undefined;
  const cleanup = async () => {
    await ingest?.stop().catch((err: unknown) => log.error({ err }, 'consumer stop failed'));
    await http?.close().catch((err: unknown) => log.error({ err }, 'http close failed'));
    await grpc?.close().catch((err: unknown) => log.error({ err }, 'grpc close failed'));
    if (owned) await database.close();
  };
  try {
    await migrateAuditLog(database.db);
    const entries = new AuditEntryRepository(database.db);
    const query = new AuditQueryService(entries);
    const consumer = new AuditIngestService(options.bus, entries, {
      ...(options.durable !== undefined ? { durable: options.durable } : {}),
      ...(options.ackWaitMs !== undefined ? { ackWaitMs: options.ackWaitMs } : {}),
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    ingest = consumer;
    const ready = async (): Promise<string | undefined> => {
      if (!consumer.running) return 'audit consumer not running';
      if (!options.bus.isConnected()) return 'event bus disconnected';
      try {
        await entries.ping();
      } catch {
        return 'database unreachable';
      }
      return undefined;
    };

    const openapi: { document?: object } = {};
    const app = await NestFactory.create<NestExpressApplication>(
      AuditLogHttpModule.forRoot({ query, verifier, ready, openapi }),
      { logger: new NestJsonLogger(), bodyParser: false },
    );
    http = app;
    app.disable('x-powered-by');
    // Refusals of the API go into this service's own chain through the ingest service (see
    // ownRefusal for why not through a publisher); it serialises with the consumer on the head lock.
    app.useGlobalFilters(new AuditHttpExceptionFilter(consumer, verifier, options.clock));
    openapi.document = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('HCP audit-log')
        .setDescription(
          'Read API of the append-only, hash-chained audit of every HCP decision. ' +
            'Every /v1/audit route needs an operator bearer token.',
        )
        .setVersion('1')
        .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
        .build(),
    );
    await app.listen(options.httpPort, host);
    const address = app.getHttpServer().address() as { port: number } | null;
    const httpPort = address?.port ?? options.httpPort;

    if (options.grpcPort !== undefined && options.grpcPort !== null) {
      grpc = await startGrpcService({
        name: 'audit-log',
        module: AuditLogGrpcModule.forRoot({ query, verifier }),
        services: AUDIT_LOG_SERVICES,
        host,
        port: options.grpcPort,
        ...(options.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
      });
    }

    await consumer.start();
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${httpPort}`;
    log.info({ url, grpc: grpc?.url ?? null, bus: options.bus.kind }, 'audit-log started');
    let closing: Promise<void> | undefined;
    return {
      httpPort,
      url,
      grpcPort: grpc?.port ?? null,
      grpcUrl: grpc?.url ?? null,
      query,
      stats: consumer.stats,
      close: () => (closing ??= cleanup()),
    };
  } catch (err: unknown) {
    await cleanup();
    throw err;
  }
}
