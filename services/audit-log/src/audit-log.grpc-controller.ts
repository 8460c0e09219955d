import { Metadata, status } from '@grpc/grpc-js';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { GrpcStatusError, invalidArgument, type TokenVerifier } from '@hcp/platform';
import { audit, auditEntryToProto, auditQueryFromProto, verifyRangeFromProto } from '@hcp/proto';
import { AuditQueryService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './audit-query.service';
import { AUDIT_TOKEN_VERIFIER } from './audit-log.tokens';
import { EntryNotFoundError, OperatorRequiredError } from './errors';
import { requireOperator } from './operator.guard';

/** Maps audit-log's own errors to gRPC statuses; HcpError goes on to the platform filter. */
async function mapped<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err: unknown) {
    if (err instanceof EntryNotFoundError) throw new GrpcStatusError(status.NOT_FOUND, err.message);
    if (err instanceof OperatorRequiredError)
      throw new GrpcStatusError(status.PERMISSION_DENIED, err.message);
    throw err;
  }
}

function authorization(metadata: Metadata | undefined): string | undefined {
  const v = metadata?.get('authorization')[0];
  return typeof v === 'string' ? v : undefined;
}

/** gRPC AuditLog (proto/hcp/audit/v1/audit_log.proto) over the same query service as REST. */
@Controller()
export class AuditLogGrpcController {
  constructor(
    @Inject(AuditQueryService) private readonly audit: AuditQueryService,
    @Inject(AUDIT_TOKEN_VERIFIER) private readonly verifier: TokenVerifier,
  ) {}

  @GrpcMethod('AuditLog', 'QueryEntries')
  queryEntries(
    request: audit.QueryEntriesRequest,
    metadata: Metadata,
  ): Promise<audit.QueryEntriesResponse> {
    return mapped(async () => {
      await requireOperator(this.verifier, authorization(metadata));
      const { filter, pageSize, pageToken } = auditQueryFromProto(request);
      const page = await this.audit.query(filter, {
        limit: pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE),
        cursorField: 'page_token',
        ...(pageToken !== undefined ? { cursor: pageToken } : {}),
      });
      return {
        entries: page.entries.map(auditEntryToProto),
        nextPageToken: page.nextCursor ?? '',
      };
    });
  }

  @GrpcMethod('AuditLog', 'GetEntry')
  getEntry(request: audit.GetEntryRequest, metadata: Metadata): Promise<audit.GetEntryResponse> {
    return mapped(async () => {
      await requireOperator(this.verifier, authorization(metadata));
      const id = request.entryId;
      if (id === '') throw invalidArgument('entry_id', 'is required');
      if (id.length > 256) throw invalidArgument('entryId', 'longer than 256 characters');
      return { entry: auditEntryToProto(await this.audit.get(id)) };
    });
  }

  @GrpcMethod('AuditLog', 'Verify')
  verify(request: audit.VerifyRequest, metadata: Metadata): Promise<audit.VerifyResponse> {
    return mapped(async () => {
      await requireOperator(this.verifier, authorization(metadata));
      const r = await this.audit.verify(verifyRangeFromProto(request));
      const b = r.firstBroken;
      return {
        status: r.ok
          ? audit.ChainStatus.CHAIN_STATUS_INTACT
          : audit.ChainStatus.CHAIN_STATUS_BROKEN,
        entriesChecked: r.checked,
        firstBrokenLink:
          b === undefined
            ? undefined
            : {
                seq: b.seq,
                entryId: b.id,
                expectedHash: b.expected,
                storedHash: b.stored,
                detail: b.reason,
              },
        lastSeq: r.lastSeq,
        lastHash: r.lastHash,
      };
    });
  }
}
