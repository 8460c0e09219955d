import {
  Controller,
  Get,
  Inject,
  Param,
  Query,
  ServiceUnavailableException,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiMethodNotAllowedResponse,
  ApiNotAcceptableResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { REASON_CODES } from '@hcp/core';
import { AuditQueryService } from './audit-query.service';
import { AUDIT_OPENAPI, AUDIT_READINESS } from './audit-log.tokens';
import {
  entryToJson,
  EntriesPageDto,
  AuditEntryDto,
  ErrorDto,
  StatusDto,
  verifyToJson,
  VerifyResultDto,
} from './audit-log.http-dto';
import { OperatorGuard } from './operator.guard';
import {
  ENDPOINT_FAMILIES,
  parseEntriesQuery,
  parseEntryId,
  parseVerifyQuery,
} from './query-params';

type RawQuery = Record<string, unknown>;

/** The REST read API of the audit. Thin: parse parameters, call the query service, shape JSON. */
@ApiTags('audit')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto, description: 'No token, or the token is not valid.' })
@ApiForbiddenResponse({ type: ErrorDto, description: "The token is not an operator's." })
@ApiNotAcceptableResponse({ type: ErrorDto, description: 'Accept admits no application/json.' })
@ApiMethodNotAllowedResponse({ type: ErrorDto, description: 'Only GET (and HEAD) are served.' })
@UseGuards(OperatorGuard)
@Controller('v1/audit')
export class AuditHttpController {
  constructor(@Inject(AuditQueryService) private readonly audit: AuditQueryService) {}

  @Get('entries')
  @ApiOperation({
    summary: 'List audit entries',
    description:
      'Entries matching every given filter, oldest first (chain order), a page at a time. ' +
      'Unknown parameters are refused with 400.',
  })
  @ApiQuery({
    name: 'principal',
    required: false,
    description: 'Only entries of this principal id.',
  })
  @ApiQuery({ name: 'outcome', required: false, enum: ['allow', 'deny'] })
  @ApiQuery({
    name: 'reason',
    required: false,
    enum: REASON_CODES,
    description: 'A reason code name.',
  })
  @ApiQuery({
    name: 'capability',
    required: false,
    description: 'Only entries for this capability id.',
  })
  @ApiQuery({ name: 'endpoint_family', required: false, enum: ENDPOINT_FAMILIES })
  @ApiQuery({
    name: 'from',
    required: false,
    description: 'Entry time at or after (RFC 3339, inclusive).',
    schema: { type: 'string', format: 'date-time' },
  })
  @ApiQuery({
    name: 'to',
    required: false,
    description: 'Entry time before (RFC 3339, exclusive).',
    schema: { type: 'string', format: 'date-time' },
  })
  @ApiQuery({ name: 'trace_id', required: false, description: 'Only entries of this trace.' })
  @ApiQuery({
    name: 'decision_id',
    required: false,
    description: 'Only entries of this decision (the id a denial carries in its error data).',
  })
  @ApiQuery({
    name: 'limit',
    required: false,
    description: 'Page size, 1..1000; default 100.',
    schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  })
  @ApiQuery({
    name: 'cursor',
    required: false,
    description: 'next_cursor of the previous page (same filters).',
  })
  @ApiOkResponse({ type: EntriesPageDto })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'A bad parameter; the message names it.' })
  async entries(@Query() query: RawQuery): Promise<EntriesPageDto> {
    const q = parseEntriesQuery(query);
    const page = await this.audit.query(q.filter, {
      limit: q.limit,
      cursorField: 'cursor',
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    });
    return { entries: page.entries.map(entryToJson), next_cursor: page.nextCursor ?? null };
  }

  @Get('entries/:id')
  @ApiOperation({ summary: 'Get one audit entry by id' })
  @ApiParam({ name: 'id', description: 'The entry id.' })
  @ApiOkResponse({ type: AuditEntryDto })
  @ApiBadRequestResponse({ type: ErrorDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  async entry(@Param('id') id: string): Promise<AuditEntryDto> {
    return entryToJson(await this.audit.get(parseEntryId(id)));
  }

  @Get('verify')
  @ApiOperation({
    summary: 'Recompute the hash chain',
    description:
      'Recomputes every entry hash (or those from from_seq to to_seq) and reports the first ' +
      'broken link: a missing seq, a prev_hash that is not the previous hash, or a hash that ' +
      'does not recompute.',
  })
  @ApiQuery({
    name: 'from_seq',
    required: false,
    description: 'First seq to check; default 1.',
    schema: { type: 'integer', minimum: 1 },
  })
  @ApiQuery({
    name: 'to_seq',
    required: false,
    description: 'Last seq to check; default the head.',
    schema: { type: 'integer', minimum: 1 },
  })
  @ApiOkResponse({ type: VerifyResultDto })
  @ApiBadRequestResponse({ type: ErrorDto })
  async verify(@Query() query: RawQuery): Promise<VerifyResultDto> {
    return verifyToJson(await this.audit.verify(parseVerifyQuery(query)));
  }
}

/** Liveness, readiness and the API description; no token needed. */
@ApiTags('service')
@Controller()
export class AuditServiceController {
  constructor(
    @Inject(AUDIT_READINESS) private readonly ready: () => Promise<string | undefined>,
    @Inject(AUDIT_OPENAPI) private readonly openapi: { document?: object },
  ) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness' })
  @ApiOkResponse({ type: StatusDto })
  healthz(): StatusDto {
    return { status: 'ok' };
  }

  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: database reachable and the audit consumer running' })
  @ApiOkResponse({ type: StatusDto })
  @ApiServiceUnavailableResponse({ type: ErrorDto })
  async readyz(): Promise<StatusDto> {
    const problem = await this.ready();
    if (problem !== undefined) throw new ServiceUnavailableException(`not ready: ${problem}`);
    return { status: 'ready' };
  }

  @Get('v1/openapi.json')
  @ApiOperation({ summary: 'This OpenAPI 3 document' })
  @ApiOkResponse({ description: 'The OpenAPI document.', schema: { type: 'object' } })
  openapiDocument(): object {
    return this.openapi.document ?? {};
  }
}
