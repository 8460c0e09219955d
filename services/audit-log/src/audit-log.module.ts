import { Module, type DynamicModule } from '@nestjs/common';
import type { TokenVerifier } from '@hcp/platform';
import { AuditLogGrpcController } from './audit-log.grpc-controller';
import { AuditHttpController, AuditServiceController } from './audit-log.http-controller';
import { AUDIT_OPENAPI, AUDIT_READINESS, AUDIT_TOKEN_VERIFIER } from './audit-log.tokens';
import { AuditQueryService } from './audit-query.service';
import { OperatorGuard } from './operator.guard';

/** What the HTTP side is built from; made outside Nest so REST and gRPC share one query service. */
export interface AuditLogHttpModuleOptions {
  readonly query: AuditQueryService;
  readonly verifier: TokenVerifier;
  /** Resolves to a problem description, or undefined when ready. */
  readonly ready: () => Promise<string | undefined>;
  /** Filled with the OpenAPI document once the app is created. */
  readonly openapi: { document?: object };
}

/** The REST side: audit queries, health, and the OpenAPI document. */
@Module({})
export class AuditLogHttpModule {
  static forRoot(options: AuditLogHttpModuleOptions): DynamicModule {
    return {
      module: AuditLogHttpModule,
      controllers: [AuditHttpController, AuditServiceController],
      providers: [
        { provide: AuditQueryService, useValue: options.query },
        { provide: AUDIT_TOKEN_VERIFIER, useValue: options.verifier },
        { provide: AUDIT_READINESS, useValue: options.ready },
        { provide: AUDIT_OPENAPI, useValue: options.openapi },
        OperatorGuard,
      ],
    };
  }
}

/** The gRPC side: hcp.audit.v1.AuditLog over the same query service. */
@Module({})
export class AuditLogGrpcModule {
  static forRoot(options: { query: AuditQueryService; verifier: TokenVerifier }): DynamicModule {
    return {
      module: AuditLogGrpcModule,
      controllers: [AuditLogGrpcController],
      providers: [
        { provide: AuditQueryService, useValue: options.query },
        { provide: AUDIT_TOKEN_VERIFIER, useValue: options.verifier },
      ],
    };
  }
}
