import { Metadata, status } from '@grpc/grpc-js';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { GrpcStatusError, invalidArgument, type TokenVerifier } from '@hcp/platform';
import { audit, auditEntryToProto, enums, fromTimestamp } from '@hcp/proto';
import type { AuditFilter } from './audit-entry.repository';
import { AuditQueryService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './audit-query.service';
import { AUDIT_TOKEN_VERIFIER } from './audit-log.tokens';
import { EntryNotFoundError, OperatorRequiredError } from './errors';
import { requireOperator } from './operator.guard';

type Wire = Readonly<Record<string, unknown>>;

function requestObject(request: unknown): Wire {
  if (typeof request !== 'object' || request === null) throw invalidArgument('request', 'missing');
  return request as Wire;
}

function str(req: Wire, field: string): string | undefined {
  const v = req[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalidArgument(field, 'must be a string');
  if (v.length > 256) throw invalidArgument(field, 'longer than 256 characters');
  return v;
}

function num(req: Wire, field: string): number {
  const v = req[field];
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw invalidArgument(field, 'must be a non-negative integer');
  return n;
}

/** An enum filter: 0 (unspecified) means any; an unknown number is an input error. */
function enumFilter<D extends string>(
  req: Wire,
  field: string,
  codec: { fromWire(v: number | null | undefined): D | undefined },
): D | undefined {
  const n = num(req, field);
  if (n === 0) return undefined;
  const value = codec.fromWire(n);
  if (value === undefined) throw invalidArgument(field, `unknown value ${n}`);
  return value;
}

function time(req: Wire, field: string): number | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object') throw invalidArgument(field, 'must be a Timestamp');
  return fromTimestamp(v);
}

/** The filters of a QueryEntriesRequest, validated. */
export function filterFromWire(req: Wire): AuditFilter {
  const f: Record<string, unknown> = {
    principalId: str(req, 'principalId'),
    outcome: enumFilter(req, 'outcome', enums.outcome),
    reason: enumFilter(req, 'reason', enums.reason),
    capabilityId: str(req, 'capabilityId'),
    endpointFamily: enumFilter(req, 'endpointFamily', enums.endpointFamily),
    from: time(req, 'startTime'),
    to: time(req, 'endTime'),
    traceId: str(req, 'traceId'),
  };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return f;
}

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
  queryEntries(request: unknown, metadata: Metadata): Promise<audit.QueryEntriesResponse> {
    return mapped(async () => {
      await requireOperator(this.verifier, authorization(metadata));
      const req = requestObject(request);
      const filter = filterFromWire(req);
      const size = num(req, 'pageSize');
      const page = await this.audit.query(filter, {
        limit: size === 0 ? DEFAULT_PAGE_SIZE : Math.min(size, MAX_PAGE_SIZE),
        cursorField: 'page_token',
        ...(str(req, 'pageToken') !== undefined ? { cursor: str(req, 'pageToken')! } : {}),
      });
      return {
        entries: page.entries.map(auditEntryToProto),
        nextPageToken: page.nextCursor ?? '',
      };
    });
  }

  @GrpcMethod('AuditLog', 'GetEntry')
  getEntry(request: unknown, metadata: Metadata): Promise<audit.GetEntryResponse> {
    return mapped(async () => {
      await requireOperator(this.verifier, authorization(metadata));
      const id = str(requestObject(request), 'entryId');
      if (id === undefined) throw invalidArgument('entry_id', 'is required');
      return { entry: auditEntryToProto(await this.audit.get(id)) };
    });
  }

  @GrpcMethod('AuditLog', 'Verify')
  verify(request: unknown, metadata: Metadata): Promise<audit.VerifyResponse> {
    return mapped(async () => {
      await requireOperator(this.verifier, authorization(metadata));
      const req = requestObject(request);
      const fromSeq = num(req, 'fromSeq');
      const toSeq = num(req, 'toSeq');
      if (toSeq !== 0 && toSeq < fromSeq)
        throw invalidArgument('to_seq', 'must not be below from_seq');
      const r = await this.audit.verify({
        ...(fromSeq !== 0 ? { fromSeq } : {}),
        ...(toSeq !== 0 ? { toSeq } : {}),
      });
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
